#include "cuda/cudnn_loader.hpp"

#include <dlfcn.h>
#include <fmt/core.h>

#include <stdexcept>

namespace wflops::cudnn {

namespace {

struct Loaded {
  Api api;
  std::string error;  // why loading failed; empty when it worked
};

template <typename F>
bool resolve(void* lib, F& fn, const char* name, std::string& error) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && error.empty()) error = fmt::format("cuDNN not available: symbol {} missing in libcudnn.so.9", name);
  return fn != nullptr;
}

Loaded load() {
  Loaded l;
  // Kept open for the life of the process: plans and handles may outlive any one benchmark.
  void* lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = dlerror();
    l.error = fmt::format("cuDNN not available: dlopen libcudnn.so.9: {}", why ? why : "unknown error");
    return l;
  }
  Api& a = l.api;
  std::string& e = l.error;
  resolve(lib, a.get_version, "cudnnGetVersion", e);
  resolve(lib, a.get_error_string, "cudnnGetErrorString", e);
  resolve(lib, a.create, "cudnnCreate", e);
  resolve(lib, a.destroy, "cudnnDestroy", e);
  resolve(lib, a.set_stream, "cudnnSetStream", e);
  resolve(lib, a.create_descriptor, "cudnnBackendCreateDescriptor", e);
  resolve(lib, a.destroy_descriptor, "cudnnBackendDestroyDescriptor", e);
  resolve(lib, a.set_attribute, "cudnnBackendSetAttribute", e);
  resolve(lib, a.get_attribute, "cudnnBackendGetAttribute", e);
  resolve(lib, a.finalize, "cudnnBackendFinalize", e);
  resolve(lib, a.execute, "cudnnBackendExecute", e);
  // Optional: present in cuDNN 9, absent from some older builds.
  a.get_last_error_string = reinterpret_cast<void (*)(char*, std::size_t)>(dlsym(lib, "cudnnGetLastErrorString"));
  if (e.empty() && a.get_version() / 10000 != 9) {
    e = fmt::format("cuDNN not available: libcudnn.so.9 reports version {}, wflops needs 9.x", a.get_version());
  }
  return l;
}

const Loaded& loaded() {
  static const Loaded l = load();
  return l;
}

}  // namespace

const Api& api() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw std::runtime_error(l.error);
  return l.api;
}

std::string unavailable_reason() { return loaded().error; }

std::size_t version() { return api().get_version(); }

std::string version_string() {
  const std::size_t v = version();  // 9.19.0 is 91900
  return fmt::format("{}.{}.{}", v / 10000, (v % 10000) / 100, v % 100);
}

std::string status_text(cudnnStatus_t status) {
  const Api& a = api();
  std::string text = fmt::format("{} ({})", a.get_error_string(status), static_cast<int>(status));
  if (a.get_last_error_string) {
    char message[1024] = {};
    a.get_last_error_string(message, sizeof message);
    if (message[0]) text += fmt::format(": {}", message);
  }
  return text;
}

void check(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  throw std::runtime_error(fmt::format("cuDNN: {} failed: {}", call, status_text(status)));
}

}  // namespace wflops::cudnn

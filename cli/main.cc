// vgpuctl: the operator's command line for vgpud (docs/cli.md).
#include <cstdlib>
#include <iostream>

#include "app.h"

int main(int argc, char** argv) {
  // gRPC logs connection failures on stderr; vgpuctl prints its own one-line
  // explanation instead. An operator can still ask for gRPC's logs.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  std::vector<std::string> args(argv + 1, argv + argc);
  return vgpu::cli::run_vgpuctl(args, std::cout, std::cerr);
}

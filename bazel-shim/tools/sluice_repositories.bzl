"""Repository rules that bring the SwiftPM-built module and the pinned Envoy into Bazel.

Bazel cannot build Swift here without downloaded rules, so SwiftPM builds the module and these
rules expose what it produced:

* `sluice_swiftpm` runs `swift build -c release --product sluice` in the Sluice package (the
  directory above this workspace), or takes a prebuilt build directory from
  `--repo_env=SLUICE_MODULE_DIR=<dir>` (the directory holding `libsluice.so`, as
  `envoy-module/build-module.sh` prints it). It exposes `libsluice.so`, the object files the `.so`
  was linked from (SwiftPM's `sluice.product/Objects.LinkFileList`), and the static libraries the
  static archive takes in privately: the Swift runtime's (`swift_static/linux`), libstdc++ and
  libcrypto.
* `sluice_envoy` exposes the pinned Envoy 1.40 binary: `--repo_env=SLUICE_ENVOY=<path>`, or what
  `envoy-module/install-envoy.sh` installs.

Both are `local = True`: every Bazel server start looks again, so an edit of the Swift sources is
picked up (an up-to-date `swift build` takes seconds).
"""

# Libraries every Linux link provides (glibc, libgcc): the archive leaves their symbols undefined.
_SYSTEM_LIBRARIES = ["c", "m", "dl", "pthread", "rt", "util", "gcc", "gcc_s", "resolv"]

def _run(rctx, argv, what, timeout = 600, quiet = True):
    result = rctx.execute([str(a) for a in argv], timeout = timeout, quiet = quiet)
    if result.return_code != 0:
        fail("%s failed (exit %d): %s\n%s%s" % (
            what,
            result.return_code,
            " ".join([str(a) for a in argv]),
            result.stdout,
            result.stderr,
        ))
    return result.stdout

def _package_root(rctx):
    # This workspace is `bazel-shim/` inside the Sluice package. The label is this file's own
    # repository's (also when another workspace, an Envoy tree, loads it as a local_repository,
    # whose directory under external/ is a symlink: hence the real path).
    workspace = _run(rctx, ["readlink", "-f", rctx.path(Label("//:WORKSPACE"))], "readlink").strip()
    return rctx.path(workspace).dirname.dirname

def _swift_toolchain_usr(rctx):
    swift = rctx.which("swift")
    if swift == None:
        fail("sluice_swiftpm: `swift` is not on PATH (Swift 6.3 is needed to build libsluice)")
    real = _run(rctx, ["readlink", "-f", swift], "readlink").strip()
    return swift, rctx.path(real).dirname.dirname

def _static_library_names(rctx, swift_usr, module_so, swift_objects):
    """The -l names the .so's link used: Swift autolink entries, the static stdlib's link file,
    and the .so's DT_NEEDED (libcrypto, libstdc++), in that order, without repeats."""
    names = []
    autolink = _run(
        rctx,
        [swift_usr.get_child("bin").get_child("swift-autolink-extract")] + swift_objects + ["-o", "-"],
        "swift-autolink-extract",
    )
    lnk = rctx.read(swift_usr.get_child("lib").get_child("swift_static").get_child("linux").get_child("static-stdlib-args.lnk"))
    for word in (autolink + "\n" + lnk).replace("\n", " ").split(" "):
        if word.startswith("-l") and word[2:] not in names:
            names.append(word[2:])
    dynamic = _run(rctx, ["readelf", "-d", module_so], "readelf -d libsluice.so")
    for line in dynamic.split("\n"):
        if "(NEEDED)" not in line or "[lib" not in line:
            continue
        soname = line.split("[lib")[1].split("]")[0]  # e.g. crypto.so.3
        name = soname.split(".so")[0]
        if name not in names:
            names.append(name)
    return names

def _sluice_swiftpm_impl(rctx):
    package_root = _package_root(rctx)
    swift, swift_usr = _swift_toolchain_usr(rctx)
    prebuilt = rctx.os.environ.get("SLUICE_MODULE_DIR", "")
    if prebuilt:
        bin_dir = rctx.path(prebuilt)
    else:
        rctx.report_progress("swift build -c release --product sluice")
        _run(
            rctx,
            [swift, "build", "-c", "release", "--product", "sluice", "--package-path", package_root],
            "swift build",
            timeout = 7200,
            quiet = False,
        )
        bin_dir = rctx.path(_run(
            rctx,
            [swift, "build", "-c", "release", "--product", "sluice", "--package-path", package_root, "--show-bin-path"],
            "swift build --show-bin-path",
        ).strip())

    module_so = bin_dir.get_child("libsluice.so")
    if not module_so.exists:
        fail("sluice_swiftpm: no libsluice.so in %s (SLUICE_MODULE_DIR must be the directory envoy-module/build-module.sh prints)" % bin_dir)
    rctx.symlink(module_so, "module/libsluice.so")

    # The objects the .so was linked from, as SwiftPM listed them for its linker.
    link_list = bin_dir.get_child("sluice.product").get_child("Objects.LinkFileList")
    if not link_list.exists:
        fail("sluice_swiftpm: %s is missing: the static archive needs SwiftPM's build directory, not only the .so" % link_list)
    objects = []
    swift_objects = []
    for line in rctx.read(link_list).split("\n"):
        line = line.strip().strip("'\"")
        if not line:
            continue
        obj = rctx.path(line)
        if not obj.exists:
            fail("sluice_swiftpm: %s lists %s, which does not exist (rebuild the module)" % (link_list, line))
        name = "objects/%s/%s" % (obj.dirname.basename, obj.basename)
        rctx.symlink(obj, name)
        objects.append(name)
        if line.endswith(".swift.o"):
            swift_objects.append(obj)

    # The static libraries the archive takes in (and hides): Swift runtime, libstdc++, libcrypto.
    static_dir = swift_usr.get_child("lib").get_child("swift_static").get_child("linux")
    arch = _run(rctx, ["uname", "-m"], "uname").strip()
    rctx.symlink(static_dir.get_child(arch).get_child("swiftrt.o"), "runtime/swiftrt.o")
    cc = rctx.os.environ.get("CC", "") or rctx.which("cc") or rctx.which("gcc")
    libraries = []
    for name in _static_library_names(rctx, swift_usr, module_so, swift_objects):
        if name in _SYSTEM_LIBRARIES:
            continue
        archive = static_dir.get_child("lib%s.a" % name)
        if not archive.exists:
            found = _run(rctx, [cc, "-print-file-name=lib%s.a" % name], "cc -print-file-name").strip()
            archive = rctx.path(found)
            if not found.startswith("/") or not archive.exists:
                fail("sluice_swiftpm: no static lib%s.a for the static archive (libsluice.so links -l%s; install its -dev package)" % (name, name))
        rctx.symlink(archive, "runtime/lib%s.a" % name)
        libraries.append("runtime/lib%s.a" % name)

    rctx.symlink(package_root.get_child("include").get_child("CEnvoyABI").get_child("envoy_dynamic_modules_abi.h"), "include/envoy_dynamic_modules_abi.h")
    rctx.file("toolchain.env", "LLVM_OBJCOPY=%s\n" % swift_usr.get_child("bin").get_child("llvm-objcopy"))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", """\
# Generated by sluice_swiftpm (bazel-shim/tools/sluice_repositories.bzl) from {bin_dir}.
package(default_visibility = ["//visibility:public"])

exports_files(["module/libsluice.so", "include/envoy_dynamic_modules_abi.h"])

# The object files of the `sluice` product, in SwiftPM's link order.
filegroup(name = "module_objects", srcs = {objects})

# The Swift image registrar every Swift image links first (it registers the metadata sections).
filegroup(name = "swift_runtime_object", srcs = ["runtime/swiftrt.o"])

# Static libraries taken into the archive and hidden there, in link order.
filegroup(name = "private_static_libraries", srcs = {libraries})

filegroup(name = "toolchain_env", srcs = ["toolchain.env"])

# Sluice's declaration of Envoy's dynamic-modules ABI (include/CEnvoyABI).
cc_library(
    name = "abi_header",
    hdrs = ["include/envoy_dynamic_modules_abi.h"],
    includes = ["include"],
)
""".format(bin_dir = bin_dir, objects = repr(objects), libraries = repr(libraries)))

sluice_swiftpm = repository_rule(
    implementation = _sluice_swiftpm_impl,
    environ = ["SLUICE_MODULE_DIR", "PATH", "CC"],
    local = True,
)

def _sluice_envoy_impl(rctx):
    envoy = rctx.os.environ.get("SLUICE_ENVOY", "")
    if not envoy:
        envoy = _run(
            rctx,
            [_package_root(rctx).get_child("envoy-module").get_child("install-envoy.sh")],
            "envoy-module/install-envoy.sh",
            timeout = 1800,
        ).strip()
    if not rctx.path(envoy).exists:
        fail("sluice_envoy: %s does not exist" % envoy)
    rctx.symlink(envoy, "envoy")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", """\
# Generated by sluice_envoy (bazel-shim/tools/sluice_repositories.bzl): the pinned Envoy 1.40, {envoy}.
package(default_visibility = ["//visibility:public"])

exports_files(["envoy"])
""".format(envoy = envoy))

sluice_envoy = repository_rule(
    implementation = _sluice_envoy_impl,
    environ = ["SLUICE_ENVOY"],
    local = True,
)

def _sluice_libcxx_impl(rctx):
    _, swift_usr = _swift_toolchain_usr(rctx)
    clangxx = swift_usr.get_child("bin").get_child("clang++")
    found = _run(
        rctx,
        ["sh", "-c", "ls -d /usr/lib/llvm-*/lib/libc++.a 2>/dev/null | sort -V | tail -n 1"],
        "looking for libc++.a",
    ).strip()
    if not found:
        fail("sluice_libcxx: no static libc++ (the link test links as Envoy does, against libc++): " +
             "apt-get install libc++-dev libc++abi-dev")
    lib_dir = rctx.path(found).dirname
    include_dir = lib_dir.dirname.get_child("include").get_child("c++").get_child("v1")
    for needed in [lib_dir.get_child("libc++abi.a"), include_dir.get_child("vector")]:
        if not needed.exists:
            fail("sluice_libcxx: %s is missing: apt-get install libc++-dev libc++abi-dev" % needed)
    rctx.symlink(lib_dir.get_child("libc++.a"), "lib/libc++.a")
    rctx.symlink(lib_dir.get_child("libc++abi.a"), "lib/libc++abi.a")
    rctx.file("libcxx.env", "CLANGXX=%s\nLIBCXX_INCLUDE=%s\n" % (clangxx, include_dir))
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", """\
# Generated by sluice_libcxx (bazel-shim/tools/sluice_repositories.bzl): LLVM's libc++ from {lib_dir},
# linked statically as Envoy links it, and the Swift toolchain's clang++ (with lld) to use it.
package(default_visibility = ["//visibility:public"])

filegroup(name = "libcxx_env", srcs = ["libcxx.env"])

# In link order: libc++ before its ABI library.
filegroup(name = "static_libraries", srcs = ["lib/libc++.a", "lib/libc++abi.a"])
""".format(lib_dir = lib_dir))

sluice_libcxx = repository_rule(
    implementation = _sluice_libcxx_impl,
    environ = ["PATH"],
    local = True,
)

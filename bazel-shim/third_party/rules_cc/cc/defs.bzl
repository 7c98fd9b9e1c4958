"""The rules_cc entry points Bazel 4.2's own @bazel_tools loads, forwarded to the native rules.

Bazel 4.2.3 (Debian's bazel-bootstrap) fetches rules_cc from GitHub on first use; Debian's
bazel-rules-cc 0.0.4 is written for a newer Bazel (it loads `use_cpp_toolchain`, which 4.2.3's
@bazel_tools lacks). The C++ rules are native in 4.2, so forwarding is all rules_cc did there.
"""

def cc_binary(**attrs):
    native.cc_binary(**attrs)

def cc_test(**attrs):
    native.cc_test(**attrs)

def cc_library(**attrs):
    native.cc_library(**attrs)

def cc_import(**attrs):
    native.cc_import(**attrs)

def cc_proto_library(**attrs):
    native.cc_proto_library(**attrs)

def cc_toolchain(**attrs):
    native.cc_toolchain(**attrs)

def cc_toolchain_suite(**attrs):
    native.cc_toolchain_suite(**attrs)

def objc_library(**attrs):
    native.objc_library(**attrs)

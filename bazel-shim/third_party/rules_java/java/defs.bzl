"""The rules_java entry points Bazel 4.2's @bazel_tools//tools/jdk package loads, forwarded to the
native rules. That package is parsed for toolchain resolution even when no Java is built; without
this local copy Bazel 4.2.3 would fetch rules_java from GitHub.
"""

def java_binary(**attrs):
    native.java_binary(**attrs)

def java_import(**attrs):
    native.java_import(**attrs)

def java_library(**attrs):
    native.java_library(**attrs)

def java_proto_library(**attrs):
    native.java_proto_library(**attrs)

def java_runtime(**attrs):
    native.java_runtime(**attrs)

def java_toolchain(**attrs):
    native.java_toolchain(**attrs)

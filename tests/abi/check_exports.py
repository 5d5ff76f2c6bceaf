#!/usr/bin/env python3
"""The shared library exports exactly the public API.

Usage: check_exports.py NM LIBVIGIL_SO INCLUDE_DIR

Reads every function declared in INCLUDE_DIR/*.h (the public headers), and
the symbols libvigil.so defines in its dynamic table (nm -D --defined-only).
Fails if a declared function is not exported (an embedder could not link
it) or if anything else is exported (an internal function, a vigil__ helper
or a static library's symbol leaking into the ABI).
"""
import pathlib
import re
import subprocess
import sys

# Symbols the toolchain itself may define in any shared object.
TOOLCHAIN = {"_init", "_fini", "_edata", "_end", "__bss_start"}
TOOLCHAIN_PREFIXES = ("__asan", "__odr_asan", "__ubsan", "__sanitizer", "__lsan")


def declared_functions(include_dir):
    """Names of the functions declared in the headers, and those not marked VIGIL_EXPORT."""
    names, unmarked = set(), set()
    for header in sorted(pathlib.Path(include_dir).glob("*.h")):
        text = header.read_text()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"//[^\n]*", " ", text)
        # extern "C" { ... } sits in #ifdef __cplusplus blocks: drop them whole.
        text = re.sub(r"#ifdef __cplusplus.*?#endif", " ", text, flags=re.S)
        # Preprocessor lines, with their continuations.
        text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
        # Struct and enum bodies (function pointers inside are not functions).
        while True:
            stripped = re.sub(r"\{[^{}]*\}", " ", text)
            if stripped == text:
                break
            text = stripped
        for stmt in text.split(";"):
            stmt = " ".join(stmt.split())
            if not stmt or stmt.startswith("typedef"):
                continue
            m = re.search(r"\b([A-Za-z_]\w*)\s*\(", stmt)
            if not m or m.group(1) == "__attribute__":
                continue
            name = m.group(1)
            names.add(name)
            if not stmt.startswith("VIGIL_EXPORT "):
                unmarked.add(f"{header.name}: {name}")
    return names, unmarked


def exported_symbols(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name = parts[-1].split("@")[0]
        if name in TOOLCHAIN or name.startswith(TOOLCHAIN_PREFIXES):
            continue
        syms.add(name)
    return syms


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    nm, lib, include_dir = sys.argv[1:]
    declared, unmarked = declared_functions(include_dir)
    exported = exported_symbols(nm, lib)
    if len(declared) < 10:
        print(f"only {len(declared)} functions found in {include_dir}: the parser is broken")
        return 1
    missing = sorted(declared - exported)
    extra = sorted(exported - declared)
    for name in missing:
        print(f"declared in a public header but not exported: {name}")
    for name in extra:
        print(f"exported but not declared in a public header: {name}")
    for what in sorted(unmarked):
        print(f"note: declaration without VIGIL_EXPORT: {what}")
    if missing or extra:
        return 1
    print(f"{len(exported)} exported symbols, exactly the {len(declared)} declared functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())

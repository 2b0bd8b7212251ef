"""keep_freed_memory: freed tensors' memory is reused instead of being faulted in again."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Three 48 MiB tensors made and freed in turn, as a 1080p forward pass's temporaries are; prints
# the minor page faults of the last five of eight rounds (one round touches 36,864 4 KiB pages).
ROUNDS = """
import resource, sys, torch
from network import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for round in range(8):
    if round == 3:
        start = faults()
    tensors = [torch.ones(12 << 20) for _ in range(3)]
    del tensors
print(faults() - start)
"""


# A 4K forward pass frees gigabytes at once. glibc returns free memory beyond its trim
# threshold at the heap's top to the system, unless trimming is off: a threshold of 2 GiB (the
# largest a C int states) returns these 2.25 GiB, and the next 256 MiB (65,536 pages), which
# reuse the freed block's start, are faulted in again. Prints the page faults of those 256 MiB.
# Only the block's first 256 MiB are written before it is freed: trimming releases the untouched
# rest as well, and writing all of it would only make the test slower. The blocks come from
# malloc itself (which PyTorch's CPU tensors use), so that nothing else lands between them and
# the heap's top.
FREED_AT_ONCE = """
import ctypes, resource, sys
if sys.argv[1] == "keep":
    from network import keep_freed_memory
    assert keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
block = libc.malloc(9 << 28)
libc.memset(block, 1, 1 << 28)
libc.free(block)
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = libc.malloc(1 << 28)
libc.memset(block, 1, 1 << 28)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def page_faults(mode: str, script: str = ROUNDS) -> int:
    """Minor page faults counted by `script`, run with glibc's default allocator settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}
    result = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                            check=True, env={**env, "PYTHONHASHSEED": "0"})
    return int(result.stdout)


def huge_pages_always() -> bool:
    """Transparent huge pages on for every mapping: 2 MiB faults, far fewer than counted here."""
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return setting.is_file() and "[always]" in setting.read_text()


LINUX_4K_PAGES = pytest.mark.skipif(not sys.platform.startswith("linux") or huge_pages_always(),
                                    reason="glibc's allocator with 4 KiB pages")


@LINUX_4K_PAGES
def test_freed_memory_is_reused_without_page_faults():
    fresh_pages = 5 * 3 * (48 << 20) // 4096
    assert page_faults("default") > fresh_pages // 2      # glibc returns and refaults them
    assert page_faults("keep") < fresh_pages // 10       # at most a little heap growth


@LINUX_4K_PAGES
def test_gigabytes_freed_at_once_stay_in_the_heap():
    assert page_faults("default", FREED_AT_ONCE) > 65_536 // 2   # unmapped, then faulted in
    assert page_faults("keep", FREED_AT_ONCE) < 65_536 // 100

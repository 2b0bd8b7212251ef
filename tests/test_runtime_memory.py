"""keep_freed_memory: freed tensors' memory is reused instead of being faulted in again."""
import os
import subprocess
import sys

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


def page_faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True,
                            check=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_is_reused_without_page_faults():
    fresh_pages = 5 * 3 * (48 << 20) // 4096
    assert page_faults("default") > fresh_pages // 2      # glibc returns and refaults them
    assert page_faults("keep") < fresh_pages // 10       # at most a little heap growth

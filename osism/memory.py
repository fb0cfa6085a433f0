"""Large allocations straight from the kernel, so freed ones go back to it.

glibc serves an allocation below its mmap threshold from the heap, and it
raises that threshold to the size of every mmapped block that is freed (up
to 32 MiB). After a few events of a megabyte, later ones come from the heap
as well, and the heap rarely shrinks: a flood of large posted events left
an API process tens of MiB above where it started. Fixing the threshold at
glibc's initial 128 KiB keeps large events (rare, bounded by MAX_EVENT_BYTES)
in blocks of their own that are unmapped when freed; small events, the
common case, are not affected.
"""

import ctypes
import ctypes.util
import logging

logger = logging.getLogger("osism.api")

# mallopt's parameter number for the mmap threshold (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def return_large_blocks_to_the_kernel() -> bool:
    """Fix glibc's mmap threshold; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError) as e:
        logger.debug("No mallopt here (%s), memory use as the allocator has it", e)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))

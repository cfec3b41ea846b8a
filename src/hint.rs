//! Hints to the CPU (prefetch a value's cache lines) and to the OS scheduler (let a thread step
//! back): one of the two homes of `unsafe` (the other is the mmap in `source::reader`).
//!
//! Every call here is advisory: getting one wrong changes speed, never results.

/// Asks the CPU to start loading `x` into its caches (a no-op off x86-64).
#[inline]
pub(crate) fn prefetch<T>(x: &T) {
    prefetch_prefix(x, std::mem::size_of::<T>());
}

/// [`prefetch`] of the first `len` bytes of `x` only.
#[inline]
pub(crate) fn prefetch_prefix<T>(x: &T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = (x as *const T).cast::<i8>();
        let len = len.min(std::mem::size_of::<T>());
        let mut off = 0;
        while off < len {
            // SAFETY: the address lies inside `x`; a prefetch never faults or writes.
            unsafe { _mm_prefetch(base.add(off), _MM_HINT_T0) };
            off += 64;
        }
        // the last line, when `x` does not start on a line boundary
        // SAFETY: as above.
        unsafe { _mm_prefetch(base.add(len.saturating_sub(1)), _MM_HINT_T0) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (x, len);
}

/// Asks the CPU to start loading `bytes[at]`'s cache line, when `at` is inside `bytes` (a no-op
/// off x86-64). One instruction, for a walk that runs ahead of itself.
#[inline(always)]
pub(crate) fn prefetch_byte_at(bytes: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(b) = bytes.get(at) {
        // SAFETY: `b` is inside `bytes`; a prefetch never faults or writes.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                (b as *const u8).cast::<i8>(),
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (bytes, at);
}

/// Lowers the calling thread's scheduling priority to nice 19 (or leaves it if already lower).
/// Best effort: a failure is ignored, since it changes only the speed. Linux thread ids.
#[cfg(feature = "full")]
pub(crate) fn lower_thread_priority() {
    // SAFETY: plain syscalls on this thread's own id; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, 19.max(now));
    }
}

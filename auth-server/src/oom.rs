//! The field guide's `FATAL: clw-auth-oom: memory allocation failed` line,
//! written where it really happens: when the allocator returns null.
//!
//! [`OomAware`] wraps the real global allocator. On a failed allocation it
//! writes the guide's two lines straight to stderr with `write(2)` (it must
//! not allocate: there is no memory) and aborts. Under a cgroup limit the
//! kernel usually kills the process first (exit 137, no line at all); the
//! line appears when the address space runs out (rlimit, overcommit off).

use std::alloc::{GlobalAlloc, Layout};

/// A global allocator wrapper that reports allocation failure in the
/// guide's words before aborting. Set it in main.rs only.
pub struct OomAware<A>(pub A);

/// Formats `n` into `buf` without allocating; returns the digits.
fn digits(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

fn write_stderr(bytes: &[u8]) {
    // SAFETY: writing a valid buffer to fd 2; errors are ignored on purpose
    // (there is nothing left to do but abort).
    unsafe {
        libc::write(2, bytes.as_ptr() as *const libc::c_void, bytes.len());
    }
}

#[cold]
fn report_and_abort(size: usize) -> ! {
    let mut buf = [0u8; 20];
    write_stderr(
        b"FATAL: clw-auth-oom: memory allocation failed\nCRITICAL: service cannot allocate ",
    );
    write_stderr(digits(size, &mut buf));
    write_stderr(b" bytes for session cache\n");
    std::process::abort()
}

// SAFETY: every method forwards to the wrapped allocator unchanged; the only
// addition is what happens after it returned null.
unsafe impl<A: GlobalAlloc> GlobalAlloc for OomAware<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        if p.is_null() {
            report_and_abort(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc_zeroed(layout);
        if p.is_null() {
            report_and_abort(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = self.0.realloc(ptr, layout, new_size);
        if p.is_null() {
            report_and_abort(new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_without_allocating() {
        let mut buf = [0u8; 20];
        assert_eq!(super::digits(0, &mut buf), b"0");
        assert_eq!(super::digits(8192, &mut buf), b"8192");
        assert_eq!(
            super::digits(usize::MAX, &mut buf),
            usize::MAX.to_string().as_bytes()
        );
    }
}

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

/// The guide's two lines for a failed allocation of `size` bytes, as parts
/// to write in order. `itoa` formats on the stack: nothing is allocated.
fn fatal_message(size: usize, digits: &mut itoa::Buffer) -> [&[u8]; 3] {
    [
        b"FATAL: clw-auth-oom: memory allocation failed\nCRITICAL: service cannot allocate ",
        digits.format(size).as_bytes(),
        b" bytes for session cache\n",
    ]
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
    let mut digits = itoa::Buffer::new();
    for part in fatal_message(size, &mut digits) {
        write_stderr(part);
    }
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
    fn message(size: usize) -> String {
        let mut digits = itoa::Buffer::new();
        super::fatal_message(size, &mut digits)
            .concat()
            .into_iter()
            .map(char::from)
            .collect()
    }

    #[test]
    fn fatal_message_is_the_guides_with_the_size() {
        assert_eq!(
            message(8192),
            "FATAL: clw-auth-oom: memory allocation failed\nCRITICAL: service cannot allocate 8192 bytes for session cache\n"
        );
        assert!(message(0).contains("allocate 0 bytes"));
        assert!(message(usize::MAX).contains(&format!("allocate {} bytes", usize::MAX)));
    }
}

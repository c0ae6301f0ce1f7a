//! A command's output on stdout. `println!` panics when the reader has gone (`baton status
//! PLAN | head -1` closes the pipe after one line): these writes take a closed pipe as the end
//! of the output instead, and end the process quietly with exit 0, as the reader asked for no
//! more. Only for commands that print and change nothing (status, logs, check, dry runs): a
//! run's live view ignores a closed stdout and carries on.

use std::io::{ErrorKind, Write};

/// Writes `args` to stdout. A closed pipe ends the process with exit 0; any other write error
/// is ignored (there is nowhere left to report it).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `println!` that ends quietly on a closed pipe (see [`write`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::report::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::report::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that ends quietly on a closed pipe (see [`write`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::report::out::write(format_args!($($arg)*)) };
}

/// Whether stdout is a pipe or socket whose reader has gone (`baton status --watch | head -1`
/// after head has left): a watcher with nothing new to print would otherwise never write again
/// to meet the closed pipe, and would wait forever.
pub fn reader_gone() -> bool {
    let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: 0, revents: 0 };
    // SAFETY: one valid pollfd, a zero timeout: poll only reads the descriptor's state.
    let ready = unsafe { libc::poll(&mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

//! Reading files others can put things at: baton's logs and lock files live in the working copy,
//! where an agent (or anyone) can leave a named pipe, a link to `/dev/zero` or a huge file. A
//! plain open of a pipe blocks until a writer comes — a thread of `baton status` or of the
//! dashboard stuck for good — and a plain read of `/dev/zero` never ends. These open only a
//! regular file, without following a symbolic link and without waiting, and read only so much.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (not a link, a pipe, a device or a folder);
/// `InvalidInput` otherwise. Never blocks.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path)?;
    // What was opened is what counts (the path may be swapped between a look and the open).
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(file)
}

/// Opens `path` for reading if it is, or links to, a regular file (a plan or a backlog item may
/// be a link the user made); never blocks on a pipe or reads a device.
pub fn open_regular_following(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display())));
    }
    Ok(file)
}

/// The whole text of the file `open` opened (not UTF-8 is an error).
pub fn read_text(mut file: File) -> std::io::Result<String> {
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// The bytes of the regular file at `path`, at most `cap` of them (`InvalidData` when it is
/// larger).
pub fn read_regular(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is larger than {cap} bytes", path.display())));
    }
    Ok(bytes)
}

/// The text of the regular file at `path` (at most `cap` bytes; not UTF-8 is an error).
pub fn read_regular_text(path: &Path, cap: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, cap)?).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not UTF-8 text", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_links_devices_and_big_files_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read_regular_text(&file, 5).unwrap(), "hello");
        assert_eq!(read_regular(&file, 4).unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(open_regular(&fifo).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        let zero = dir.path().join("z");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert!(read_regular(&zero, 1024).is_err());
        assert!(open_regular(dir.path()).is_err());
        assert_eq!(open_regular(&dir.path().join("none")).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }
}

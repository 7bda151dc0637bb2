//! The store-wide image lock: fetches and pod preparation hold it shared,
//! `image gc` exclusively, so gc never deletes a blob or tree that an
//! import is writing or a pod being prepared is about to reference.

use std::fs::File;

use super::{io_err, ImageStore, Result};

pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    fn open(store: &ImageStore) -> Result<File> {
        let p = store.locks_dir().join("images");
        // Not truncated: every pod start takes this lock, and truncating
        // the (empty) file would dirty its inode each time.
        let open = || std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&p);
        // The directory is made when missing, not checked first: this
        // is on every pod start.
        let file = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = store.locks_dir();
                std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
                open()
            }
            r => r,
        };
        file.map_err(io_err(format!("cannot open {}", p.display())))
    }

    pub fn shared(store: &ImageStore) -> Result<StoreLock> {
        let f = Self::open(store)?;
        f.lock_shared().map_err(io_err("cannot take the image store lock"))?;
        Ok(StoreLock { _file: f })
    }

    pub fn exclusive(store: &ImageStore) -> Result<StoreLock> {
        let f = Self::open(store)?;
        f.lock().map_err(io_err("cannot take the image store lock"))?;
        Ok(StoreLock { _file: f })
    }
}

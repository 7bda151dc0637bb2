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
        let dir = store.locks_dir();
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        }
        let p = dir.join("images");
        // Not truncated: every pod start takes this lock, and truncating
        // the (empty) file would dirty its inode each time.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .map_err(io_err(format!("cannot open {}", p.display())))
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

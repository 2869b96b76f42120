//! The state database: SQLite in WAL mode, one transaction per state change.
//!
//! Containers and images are stored as JSON documents in berth's own format (the domain
//! types), with the columns that need indexes beside them. Blobs and layers live on disk
//! under the storage root; a layer exists iff its directory does (see berth-storage).

use berth_core::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    config BLOB NOT NULL,
    size INTEGER NOT NULL,
    loaded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_refs (
    ref TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_refs_by_image ON image_refs(image_id);
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS build_cache (
    parent TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    image_id TEXT NOT NULL,
    PRIMARY KEY (parent, cache_key)
);
"#;

/// One row of the images table.
pub struct ImageRow {
    pub id: String,
    /// The original config bytes (their digest is the id).
    pub config: Vec<u8>,
    pub size: i64,
    /// RFC 3339.
    pub loaded_at: String,
}

/// A handle on the state database. Calls are short; a mutex serialises them.
pub struct Db {
    conn: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("state database: {e}"))
}

impl Db {
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(db_err)?;
        // WAL + NORMAL: a crash of the daemon never loses a committed transaction; only a
        // power loss can lose the last ones, and never leaves a torn one.
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;")
            .map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| Error::internal("state database lock poisoned"))?;
        f(&mut conn).map_err(db_err)
    }

    // ---- containers ----

    pub fn put_container(&self, id: &str, name: &str, doc: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO containers(id, name, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                params![id, name, doc],
            )
            .map(|_| ())
        })
    }

    pub fn delete_container(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM containers WHERE id = ?1", params![id])
                .map(|_| ())
        })
    }

    pub fn containers(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT doc FROM containers")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    // ---- networks ----

    pub fn put_network(&self, id: &str, name: &str, doc: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO networks(id, name, doc) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                params![id, name, doc],
            )
            .map(|_| ())
        })
    }

    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM networks WHERE id = ?1", params![id])
                .map(|_| ())
        })
    }

    pub fn networks(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT doc FROM networks")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    // ---- volumes ----

    pub fn put_volume(&self, name: &str, doc: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO volumes(name, doc) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET doc = excluded.doc",
                params![name, doc],
            )
            .map(|_| ())
        })
    }

    pub fn delete_volume(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM volumes WHERE name = ?1", params![name])
                .map(|_| ())
        })
    }

    pub fn volumes(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT doc FROM volumes")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    // ---- images ----

    pub fn put_image(&self, id: &str, config: &[u8], size: i64, loaded_at: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO images(id, config, size, loaded_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO NOTHING",
                params![id, config, size, loaded_at],
            )
            .map(|_| ())
        })
    }

    pub fn delete_image(&self, id: &str) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM image_refs WHERE image_id = ?1", params![id])?;
            tx.execute("DELETE FROM images WHERE id = ?1", params![id])?;
            tx.commit()
        })
    }

    /// Every image row.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT id, config, size, loaded_at FROM images")?;
            let rows = st.query_map([], |r| {
                Ok(ImageRow {
                    id: r.get(0)?,
                    config: r.get(1)?,
                    size: r.get(2)?,
                    loaded_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn image_config(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.with(|c| {
            c.query_row(
                "SELECT config FROM images WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Points `reference` at `image_id`; returns the image it pointed at before.
    pub fn set_ref(&self, reference: &str, image_id: &str, kind: &str) -> Result<Option<String>> {
        self.with(|c| {
            let tx = c.transaction()?;
            let old: Option<String> = tx
                .query_row(
                    "SELECT image_id FROM image_refs WHERE ref = ?1",
                    params![reference],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "INSERT INTO image_refs(ref, image_id, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, kind = excluded.kind",
                params![reference, image_id, kind],
            )?;
            tx.commit()?;
            Ok(old)
        })
    }

    pub fn delete_ref(&self, reference: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM image_refs WHERE ref = ?1", params![reference])
                .map(|_| ())
        })
    }

    // ---- build cache: (parent image, step key) → image a build made ----

    pub fn build_cache_get(&self, parent: &str, key: &str) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row(
                "SELECT image_id FROM build_cache WHERE parent = ?1 AND cache_key = ?2",
                params![parent, key],
                |r| r.get(0),
            )
            .optional()
        })
    }

    pub fn build_cache_put(&self, parent: &str, key: &str, image_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO build_cache(parent, cache_key, image_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT(parent, cache_key) DO UPDATE SET image_id = excluded.image_id",
                params![parent, key, image_id],
            )
            .map(|_| ())
        })
    }

    pub fn build_cache_delete(&self, parent: &str, key: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM build_cache WHERE parent = ?1 AND cache_key = ?2",
                params![parent, key],
            )
            .map(|_| ())
        })
    }

    /// (ref, image id, kind) of every reference.
    pub fn refs(&self) -> Result<Vec<(String, String, String)>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT ref, image_id, kind FROM image_refs")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_and_refs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let db = Db::open(&path).unwrap();
            db.put_container("c1", "web", "{}").unwrap();
            db.put_image("sha256:aa", b"{}", 3, "2026-01-01T00:00:00Z")
                .unwrap();
            assert_eq!(
                db.set_ref("docker.io/library/busybox:latest", "sha256:aa", "tag")
                    .unwrap(),
                None
            );
            assert_eq!(
                db.set_ref("docker.io/library/busybox:latest", "sha256:bb", "tag")
                    .unwrap(),
                Some("sha256:aa".into())
            );
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.containers().unwrap(), vec!["{}".to_string()]);
        assert_eq!(db.refs().unwrap()[0].1, "sha256:bb");
        db.delete_image("sha256:bb").unwrap();
        assert!(db.refs().unwrap().is_empty());
    }

    #[test]
    fn build_cache_entries_are_replaced_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("b.db")).unwrap();
        assert_eq!(db.build_cache_get("sha256:p", "k").unwrap(), None);
        db.build_cache_put("sha256:p", "k", "sha256:a").unwrap();
        db.build_cache_put("sha256:p", "k", "sha256:b").unwrap();
        assert_eq!(
            db.build_cache_get("sha256:p", "k").unwrap().as_deref(),
            Some("sha256:b")
        );
        db.build_cache_delete("sha256:p", "k").unwrap();
        assert_eq!(db.build_cache_get("sha256:p", "k").unwrap(), None);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("b.db")).unwrap();
        db.put_container("c1", "web", "{}").unwrap();
        assert!(db.put_container("c2", "web", "{}").is_err());
    }
}

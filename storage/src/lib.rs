//! Ferrogram storage: an r2d2 pool of rusqlite connections, numbered SQL
//! migrations and small repository functions. Being written.

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Storage;

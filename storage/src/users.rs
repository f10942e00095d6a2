//! Accounts: profile, password material (hash of auth_key, KDF salt and
//! parameters, sealed private keys) and public keys.

use crate::{map_unique, StorageError, UniqueField};
use ferrogram_core::b64::B64;
use ferrogram_core::ids::{Timestamp, UserId};
use ferrogram_core::proto::{GroupAddPolicy, KdfAlg, KdfParams, PublicKeys};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// A new account as the register handler hands it over (already validated
/// and normalised).
pub struct NewUser {
    pub email: String,
    pub handle: String,
    pub display_name: String,
    /// Argon2id PHC string of the auth_key.
    pub auth_hash: String,
    pub kdf_salt: Vec<u8>,
    pub kdf: KdfParams,
    pub public_keys: PublicKeys,
    pub sealed_keys: Vec<u8>,
    pub created_at: Timestamp,
}

/// One stored account.
#[derive(Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    pub auth_hash: String,
    pub kdf_salt: Vec<u8>,
    pub kdf: KdfParams,
    pub public_keys: PublicKeys,
    pub sealed_keys: Vec<u8>,
    pub verified_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The privacy setting "who can add me to groups".
    pub who_can_add_me: GroupAddPolicy,
}

impl User {
    pub fn is_verified(&self) -> bool {
        self.verified_at.is_some()
    }
}

/// Leaves out the hash and the sealed keys, so a stray `{:?}` cannot leak them.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("handle", &self.handle)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

/// What other users may see of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub id: UserId,
    pub handle: String,
    pub display_name: String,
    pub bio: String,
}

/// A profile change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub handle: Option<String>,
    pub who_can_add_me: Option<GroupAddPolicy>,
}

/// Everything a password change replaces.
pub struct PasswordMaterial {
    pub auth_hash: String,
    pub kdf_salt: Vec<u8>,
    pub kdf: KdfParams,
    pub sealed_keys: Vec<u8>,
}

const USER_COLUMNS: &str = "id, email, handle, display_name, bio, auth_hash, kdf_salt, \
     kdf_alg, kdf_m_cost, kdf_t_cost, kdf_p_cost, sign_key, enc_key, sealed_keys, \
     verified_at, created_at, updated_at, who_can_add_me";

fn alg_name(alg: KdfAlg) -> &'static str {
    match alg {
        KdfAlg::Argon2id => "argon2id",
    }
}

fn parse_alg(name: &str) -> Result<KdfAlg, StorageError> {
    match name {
        "argon2id" => Ok(KdfAlg::Argon2id),
        _ => Err(StorageError::Corrupt { column: "kdf_alg" }),
    }
}

pub(crate) fn parse_policy(name: &str) -> Result<GroupAddPolicy, StorageError> {
    GroupAddPolicy::parse(name).ok_or(StorageError::Corrupt {
        column: "who_can_add_me",
    })
}

fn user_from_row(row: &Row<'_>) -> Result<User, StorageError> {
    let alg: String = row.get("kdf_alg")?;
    Ok(User {
        id: UserId(row.get("id")?),
        email: row.get("email")?,
        handle: row.get("handle")?,
        display_name: row.get("display_name")?,
        bio: row.get("bio")?,
        auth_hash: row.get("auth_hash")?,
        kdf_salt: row.get("kdf_salt")?,
        kdf: KdfParams {
            alg: parse_alg(&alg)?,
            m_cost_kib: row.get("kdf_m_cost")?,
            t_cost: row.get("kdf_t_cost")?,
            p_cost: row.get("kdf_p_cost")?,
        },
        public_keys: PublicKeys {
            sign: B64(row.get("sign_key")?),
            enc: B64(row.get("enc_key")?),
        },
        sealed_keys: row.get("sealed_keys")?,
        verified_at: row.get("verified_at")?,
        created_at: row.get("created_at")?,
        updated_at: row.get("updated_at")?,
        who_can_add_me: parse_policy(&row.get::<_, String>("who_can_add_me")?)?,
    })
}

fn one_user(
    conn: &Connection,
    column: &str,
    value: &dyn rusqlite::ToSql,
) -> Result<Option<User>, StorageError> {
    // `column` is always one of our literals below, never input.
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([value])?;
    match rows.next()? {
        Some(row) => user_from_row(row).map(Some),
        None => Ok(None),
    }
}

/// Inserts an account; a taken email or handle is [`StorageError::Conflict`].
pub fn insert(conn: &Connection, user: &NewUser) -> Result<UserId, StorageError> {
    conn.execute(
        "INSERT INTO users (email, handle, display_name, bio, auth_hash, kdf_salt, kdf_alg, \
         kdf_m_cost, kdf_t_cost, kdf_p_cost, sign_key, enc_key, sealed_keys, verified_at, \
         created_at, updated_at) \
         VALUES (?1, ?2, ?3, '', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, NULL, ?13, ?13)",
        params![
            user.email,
            user.handle,
            user.display_name,
            user.auth_hash,
            user.kdf_salt,
            alg_name(user.kdf.alg),
            user.kdf.m_cost_kib,
            user.kdf.t_cost,
            user.kdf.p_cost,
            user.public_keys.sign.as_slice(),
            user.public_keys.enc.as_slice(),
            user.sealed_keys,
            user.created_at,
        ],
    )
    .map_err(map_unique)?;
    Ok(UserId(conn.last_insert_rowid()))
}

pub fn by_id(conn: &Connection, id: UserId) -> Result<Option<User>, StorageError> {
    one_user(conn, "id", &id.0)
}

/// `email` must already be normalised (`core::validate::email`).
pub fn by_email(conn: &Connection, email: &str) -> Result<Option<User>, StorageError> {
    one_user(conn, "email", &email)
}

/// `handle` must already be normalised (`core::validate::handle`).
pub fn by_handle(conn: &Connection, handle: &str) -> Result<Option<User>, StorageError> {
    one_user(conn, "handle", &handle)
}

/// Which of `email` and `handle` already belongs to an account (email first),
/// so a registration can fail fast before the expensive hash. The insert's
/// UNIQUE constraints remain the real guard against races.
pub fn taken(
    conn: &Connection,
    email: &str,
    handle: &str,
) -> Result<Option<UniqueField>, StorageError> {
    let email_taken: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE email = ?1)")?
        .query_row([email], |r| r.get(0))?;
    if email_taken {
        return Ok(Some(UniqueField::Email));
    }
    let handle_taken: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE handle = ?1)")?
        .query_row([handle], |r| r.get(0))?;
    Ok(handle_taken.then_some(UniqueField::Handle))
}

/// Applies the given profile fields. Returns false if the account does not
/// exist; a taken handle is [`StorageError::Conflict`].
pub fn update_profile(
    conn: &Connection,
    id: UserId,
    update: &ProfileUpdate,
    now: Timestamp,
) -> Result<bool, StorageError> {
    // COALESCE keeps the stored value where the update has none, so one
    // statement covers every combination of fields.
    let changed = conn
        .execute(
            "UPDATE users SET display_name = COALESCE(?2, display_name), \
             bio = COALESCE(?3, bio), handle = COALESCE(?4, handle), updated_at = ?5, \
             who_can_add_me = COALESCE(?6, who_can_add_me) WHERE id = ?1",
            params![
                id.0,
                update.display_name,
                update.bio,
                update.handle,
                now,
                update.who_can_add_me.map(GroupAddPolicy::as_str)
            ],
        )
        .map_err(map_unique)?;
    Ok(changed == 1)
}

/// Replaces the hash, KDF salt and parameters and the sealed keys together.
pub fn update_password(
    conn: &Connection,
    id: UserId,
    material: &PasswordMaterial,
    now: Timestamp,
) -> Result<bool, StorageError> {
    let changed = conn.execute(
        "UPDATE users SET auth_hash = ?2, kdf_salt = ?3, kdf_alg = ?4, kdf_m_cost = ?5, \
         kdf_t_cost = ?6, kdf_p_cost = ?7, sealed_keys = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            id.0,
            material.auth_hash,
            material.kdf_salt,
            alg_name(material.kdf.alg),
            material.kdf.m_cost_kib,
            material.kdf.t_cost,
            material.kdf.p_cost,
            material.sealed_keys,
            now,
        ],
    )?;
    Ok(changed == 1)
}

/// Marks the email verified (keeps the first verification time).
pub fn mark_verified(conn: &Connection, id: UserId, now: Timestamp) -> Result<bool, StorageError> {
    let changed = conn.execute(
        "UPDATE users SET verified_at = COALESCE(verified_at, ?2), updated_at = ?2 WHERE id = ?1",
        params![id.0, now],
    )?;
    Ok(changed == 1)
}

/// Deletes the account; sessions and verifications go with it (ON DELETE
/// CASCADE, which needs `foreign_keys=ON`: every pooled connection sets it).
pub fn delete(conn: &Connection, id: UserId) -> Result<bool, StorageError> {
    Ok(conn.execute("DELETE FROM users WHERE id = ?1", [id.0])? == 1)
}

/// Escapes `\`, `%` and `_` so user input matches literally in
/// `LIKE ... ESCAPE '\'` (handles contain `_`, which would otherwise match
/// any character).
pub fn escape_like(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 4);
    for c in input.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Accounts whose handle or display name starts with `query`
/// (case-insensitive for ASCII, as SQLite's LIKE is). An exact handle match
/// comes first, then handle prefixes, then display-name matches.
pub fn search(conn: &Connection, query: &str, limit: u32) -> Result<Vec<Profile>, StorageError> {
    let pattern = format!("{}%", escape_like(query));
    let mut stmt = conn.prepare_cached(
        "SELECT id, handle, display_name, bio FROM users \
         WHERE handle LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\' \
         ORDER BY handle = lower(?2) DESC, handle LIKE ?1 ESCAPE '\\' DESC, handle \
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![pattern, query, limit], |row| {
        Ok(Profile {
            id: UserId(row.get(0)?),
            handle: row.get(1)?,
            display_name: row.get(2)?,
            bio: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Number of accounts (for start-up logs and metrics).
pub fn count(conn: &Connection) -> Result<i64, StorageError> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

/// The id of the account with this email, if any.
pub fn id_by_email(conn: &Connection, email: &str) -> Result<Option<UserId>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT id FROM users WHERE email = ?1")?
        .query_row([email], |r| r.get(0))
        .optional()?
        .map(UserId))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_support::temp_storage;

    pub fn new_user(email: &str, handle: &str) -> NewUser {
        NewUser {
            email: email.into(),
            handle: handle.into(),
            display_name: format!("Name of {handle}"),
            auth_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
            kdf_salt: vec![7; 16],
            kdf: KdfParams::DEFAULT,
            public_keys: PublicKeys {
                sign: B64(vec![1, 2, 3]),
                enc: B64(vec![4, 5, 6]),
            },
            sealed_keys: vec![9; 40],
            created_at: Timestamp::from_millis(1_000),
        }
    }

    #[test]
    fn insert_and_read_back_by_id_email_handle() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let id = insert(conn, &new_user("a@x.org", "alice"))?;
                let u = by_id(conn, id)?.unwrap();
                assert_eq!(u.email, "a@x.org");
                assert_eq!(u.handle, "alice");
                assert_eq!(u.bio, "");
                assert_eq!(u.kdf, KdfParams::DEFAULT);
                assert_eq!(u.kdf_salt, vec![7; 16]);
                assert_eq!(u.public_keys.enc, B64(vec![4, 5, 6]));
                assert_eq!(u.sealed_keys, vec![9; 40]);
                assert!(!u.is_verified());
                assert_eq!(
                    (u.created_at, u.updated_at),
                    (Timestamp::from_millis(1_000), Timestamp::from_millis(1_000))
                );
                assert_eq!(by_email(conn, "a@x.org")?.unwrap().id, id);
                assert_eq!(by_handle(conn, "alice")?.unwrap().id, id);
                assert_eq!(id_by_email(conn, "a@x.org")?, Some(id));
                assert!(by_email(conn, "b@x.org")?.is_none());
                assert!(by_handle(conn, "bob")?.is_none());
                assert!(by_id(conn, UserId(id.0 + 1))?.is_none());
                assert_eq!(count(conn)?, 1);
                // Debug never shows the hash or the sealed keys
                let dbg = format!("{u:?}");
                assert!(
                    !dbg.contains("argon2id") && !dbg.contains("sealed"),
                    "{dbg}"
                );
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn duplicate_email_or_handle_is_a_conflict() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                insert(conn, &new_user("a@x.org", "alice"))?;
                let e = insert(conn, &new_user("a@x.org", "other")).unwrap_err();
                assert!(
                    matches!(e, StorageError::Conflict(UniqueField::Email)),
                    "{e}"
                );
                let e = insert(conn, &new_user("b@x.org", "alice")).unwrap_err();
                assert!(
                    matches!(e, StorageError::Conflict(UniqueField::Handle)),
                    "{e}"
                );
                assert_eq!(taken(conn, "a@x.org", "zed")?, Some(UniqueField::Email));
                assert_eq!(taken(conn, "c@x.org", "alice")?, Some(UniqueField::Handle));
                assert_eq!(taken(conn, "c@x.org", "zed")?, None);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn ids_are_not_reused_after_delete() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let first = insert(conn, &new_user("a@x.org", "alice"))?;
                assert!(delete(conn, first)?);
                let second = insert(conn, &new_user("a@x.org", "alice"))?;
                assert!(second.0 > first.0);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn profile_update_changes_only_given_fields() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let id = insert(conn, &new_user("a@x.org", "alice"))?;
                insert(conn, &new_user("b@x.org", "bob"))?;
                let bio_only = ProfileUpdate {
                    bio: Some("hi".into()),
                    ..ProfileUpdate::default()
                };
                assert!(update_profile(
                    conn,
                    id,
                    &bio_only,
                    Timestamp::from_millis(2_000)
                )?);
                let u = by_id(conn, id)?.unwrap();
                assert_eq!((u.bio.as_str(), u.handle.as_str()), ("hi", "alice"));
                assert_eq!(u.display_name, "Name of alice");
                assert_eq!(u.updated_at, Timestamp::from_millis(2_000));
                let rename = ProfileUpdate {
                    handle: Some("alicia".into()),
                    display_name: Some("Alicia".into()),
                    ..ProfileUpdate::default()
                };
                assert!(update_profile(
                    conn,
                    id,
                    &rename,
                    Timestamp::from_millis(3_000)
                )?);
                let u = by_id(conn, id)?.unwrap();
                assert_eq!(
                    (u.handle.as_str(), u.display_name.as_str(), u.bio.as_str()),
                    ("alicia", "Alicia", "hi")
                );
                let clash = ProfileUpdate {
                    handle: Some("bob".into()),
                    ..ProfileUpdate::default()
                };
                let e =
                    update_profile(conn, id, &clash, Timestamp::from_millis(4_000)).unwrap_err();
                assert!(matches!(e, StorageError::Conflict(UniqueField::Handle)));
                assert!(!update_profile(
                    conn,
                    UserId(999),
                    &bio_only,
                    Timestamp::from_millis(5_000)
                )?);
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn password_material_and_verification() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let id = insert(conn, &new_user("a@x.org", "alice"))?;
                let kdf = KdfParams {
                    m_cost_kib: 65_536,
                    ..KdfParams::DEFAULT
                };
                let material = PasswordMaterial {
                    auth_hash: "$argon2id$new".into(),
                    kdf_salt: vec![1; 32],
                    kdf,
                    sealed_keys: vec![2; 50],
                };
                assert!(update_password(
                    conn,
                    id,
                    &material,
                    Timestamp::from_millis(2_000)
                )?);
                let u = by_id(conn, id)?.unwrap();
                assert_eq!(u.auth_hash, "$argon2id$new");
                assert_eq!(u.kdf_salt, vec![1; 32]);
                assert_eq!(u.kdf, kdf);
                assert_eq!(u.sealed_keys, vec![2; 50]);
                assert!(!update_password(
                    conn,
                    UserId(999),
                    &material,
                    Timestamp::from_millis(2_000)
                )?);

                assert!(mark_verified(conn, id, Timestamp::from_millis(3_000))?);
                assert!(mark_verified(conn, id, Timestamp::from_millis(4_000))?);
                assert_eq!(
                    by_id(conn, id)?.unwrap().verified_at,
                    Some(Timestamp::from_millis(3_000))
                );
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn delete_cascades_to_sessions_and_verifications() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let id = insert(conn, &new_user("a@x.org", "alice"))?;
                let other = insert(conn, &new_user("b@x.org", "bob"))?;
                for (n, owner) in [(1u8, id), (2, id), (3, other)] {
                    crate::sessions::insert(conn, &crate::sessions::tests::new_session(owner, n))?;
                }
                crate::verifications::upsert(
                    conn,
                    &crate::verifications::tests::new_verification(id, 1),
                )?;
                assert!(delete(conn, id)?);
                assert!(!delete(conn, id)?);
                let sessions: i64 =
                    conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))?;
                let verifications: i64 =
                    conn.query_row("SELECT count(*) FROM email_verifications", [], |r| r.get(0))?;
                assert_eq!((sessions, verifications), (1, 0));
                assert!(by_id(conn, other)?.is_some());
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }

    #[test]
    fn like_escaping() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(escape_like("plain"), "plain");
    }

    #[test]
    fn search_by_handle_or_name_prefix() {
        let (_dir, storage) = temp_storage();
        storage
            .with_conn(|conn| {
                let add = |email: &str, handle: &str, name: &str| -> Result<UserId, StorageError> {
                    let mut u = new_user(email, handle);
                    u.display_name = name.into();
                    insert(conn, &u)
                };
                add("1@x.org", "anna_k", "Anna Karenina")?;
                add("2@x.org", "annabel", "Belle")?;
                add("3@x.org", "ann", "Someone")?;
                add("4@x.org", "zed", "Annika")?;
                add("5@x.org", "annxk", "Underscore test")?;
                add("6@x.org", "percent", "100% Real")?;

                let handles = |q: &str, limit: u32| -> Vec<String> {
                    search(conn, q, limit)
                        .unwrap()
                        .into_iter()
                        .map(|p| p.handle)
                        .collect()
                };
                // exact handle first, then handle prefixes, then names
                assert_eq!(
                    handles("ann", 10),
                    ["ann", "anna_k", "annabel", "annxk", "zed"]
                );
                assert_eq!(
                    handles("ANN", 10),
                    ["ann", "anna_k", "annabel", "annxk", "zed"]
                );
                assert_eq!(handles("ann", 2), ["ann", "anna_k"]);
                // `_` is literal, not "any character" (annxk must not match)
                assert_eq!(handles("anna_", 10), ["anna_k"]);
                assert_eq!(handles("ann_", 10), Vec::<String>::new());
                // `%` is literal too
                assert_eq!(handles("100%", 10), ["percent"]);
                assert_eq!(handles("%", 10), Vec::<String>::new());
                assert_eq!(handles("bel", 10), ["annabel"]);
                assert_eq!(handles("nobody", 10), Vec::<String>::new());
                let p = &search(conn, "zed", 1)?[0];
                assert_eq!((p.display_name.as_str(), p.bio.as_str()), ("Annika", ""));
                Ok::<_, StorageError>(())
            })
            .unwrap();
    }
}

//! Stored records turned into their wire shapes.

use ferrogram_core::crypto::fingerprint::fingerprint;
use ferrogram_core::ids::SessionId;
use ferrogram_core::proto::{Me, SessionInfo, UserProfile};
use ferrogram_storage::sessions::SessionRecord;
use ferrogram_storage::users::{Profile, User};

pub(crate) fn me(user: &User) -> Me {
    Me {
        id: user.id,
        email: user.email.clone(),
        handle: user.handle.clone(),
        display_name: user.display_name.clone(),
        bio: user.bio.clone(),
        verified: user.is_verified(),
        created_at: user.created_at,
        public_keys: user.public_keys.clone(),
        fingerprint: fingerprint(&user.public_keys),
        who_can_add_me: user.who_can_add_me,
    }
}

pub(crate) fn session(session: SessionRecord, current: &SessionId) -> SessionInfo {
    SessionInfo {
        current: session.id == *current,
        id: session.id,
        device_name: session.device_name,
        created_at: session.created_at,
        last_seen_at: session.last_seen_at,
        expires_at: session.expires_at,
    }
}

pub(crate) fn profile(p: Profile) -> UserProfile {
    UserProfile {
        id: p.id,
        handle: p.handle,
        display_name: p.display_name,
        bio: p.bio,
    }
}

pub(crate) fn user_profile(u: &User) -> UserProfile {
    UserProfile {
        id: u.id,
        handle: u.handle.clone(),
        display_name: u.display_name.clone(),
        bio: u.bio.clone(),
    }
}

//! How much one page of a list may hold: shared by `chat.list` and
//! `message.history`, so neither command module reaches into the other.

use crate::HandlerCtx;

/// Bytes of a reply around its list of events or chats: the reply frame's
/// own fields, `more`, a cursor. Pages leave this much of
/// `limits.max_reply_bytes` free.
pub(crate) const REPLY_OVERHEAD_BYTES: usize = 1024;

/// JSON bytes the items of one page may take: `limits.max_reply_bytes` less
/// the reply's own fields.
pub(crate) fn page_bytes(ctx: &HandlerCtx) -> usize {
    ctx.settings
        .max_reply_bytes
        .saturating_sub(REPLY_OVERHEAD_BYTES)
        .max(1)
}

//! What the messenger tells its user: decrypted messages with how far they
//! can be trusted, chat changes, live signals, key changes and the state of
//! the connection. Every type serializes to JSON (ferrogram-cli `--json`).

use std::time::Duration;

use ferrogram_core::ids::{ChatId, Seq, Timestamp, UserId};
use ferrogram_core::proto::{ChatSummary, Invitation, Role, UserProfile};
use serde::{Deserialize, Serialize};

use crate::messages::{Message, MessageDeletion, MessageEdit};

/// A change to a chat itself, from its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatChange {
    pub chat_id: ChatId,
    pub seq: Seq,
    /// Who made the change.
    pub sender: UserId,
    pub at: Timestamp,
    pub change: ChatChangeKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatChangeKind {
    Created {
        title: Option<String>,
        members: Vec<UserId>,
    },
    MembersAdded {
        user_ids: Vec<UserId>,
    },
    MemberRemoved {
        user_id: UserId,
    },
    MemberLeft {
        user_id: UserId,
    },
    Renamed {
        title: String,
    },
    RoleChanged {
        user_id: UserId,
        role: Role,
    },
}

/// One decoded entry of a chat's log, as [`Messenger::history`](crate::Messenger::history)
/// answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum ChatEntry {
    Message(Message),
    Edited(MessageEdit),
    Deleted(MessageDeletion),
    Changed(ChatChange),
}

impl ChatEntry {
    pub fn seq(&self) -> Seq {
        match self {
            Self::Message(m) => m.seq,
            Self::Edited(e) => e.seq,
            Self::Deleted(d) => d.seq,
            Self::Changed(c) => c.seq,
        }
    }
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    pub entries: Vec<ChatEntry>,
    /// True when older (or, paging forwards, newer) entries remain.
    pub more: bool,
}

impl History {
    /// The messages of this page with the page's edits and deletions applied.
    pub fn messages(&self) -> Vec<Message> {
        let mut messages: Vec<Message> = Vec::new();
        for entry in &self.entries {
            match entry {
                ChatEntry::Message(m) => messages.push(m.clone()),
                ChatEntry::Edited(edit) => {
                    if let Some(m) = messages
                        .iter_mut()
                        .find(|m| m.seq == edit.target_seq && m.sender == edit.sender && !m.deleted)
                    {
                        if edit.verification.is_trusted() || !m.verification.is_trusted() {
                            m.payload.clone_from(&edit.payload);
                            m.verification = edit.verification.clone();
                        }
                        m.edited_seq = Some(edit.seq);
                    }
                }
                ChatEntry::Deleted(deletion) => {
                    if let Some(m) = messages
                        .iter_mut()
                        .find(|m| m.seq == deletion.target_seq && m.sender == deletion.sender)
                    {
                        m.deleted = true;
                        m.payload = None;
                    }
                }
                ChatEntry::Changed(_) => {}
            }
        }
        messages
    }
}

/// The state of the messenger's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Opening the first connection.
    Connecting,
    /// Connected and caught up: everything missed while away has been received.
    Connected,
    /// The connection was lost; the next attempt starts in `retry_in_ms`.
    Reconnecting { attempt: u32, retry_in_ms: u64 },
    /// Given up for good: the session ended (log in again), or the
    /// messenger was closed.
    Offline { reason: String },
}

impl ConnectionState {
    pub(crate) fn reconnecting(attempt: u32, retry_in: Duration) -> Self {
        Self::Reconnecting {
            attempt,
            retry_in_ms: u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Everything the messenger reports, in the order it happened. Messages of
/// one chat arrive in seq order, each exactly once per device (the local
/// store remembers what was delivered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClientEvent {
    /// A new message, also one this account sent (from this or another
    /// device: `verification` is then [`Verification::Own`](crate::Verification::Own)).
    MessageReceived(Message),
    MessageEdited(MessageEdit),
    MessageDeleted(MessageDeletion),
    /// Created, members added, removed or gone, renamed, roles changed.
    ChatChanged(ChatChange),
    Typing {
        chat_id: ChatId,
        user_id: UserId,
    },
    /// `user_id` has read `chat_id` up to `seq`.
    ReadReceipt {
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
    },
    /// A device of `user_id` has received `chat_id` up to `seq` (my
    /// messages up to it are delivered). The messenger acknowledges what it
    /// receives by itself; this reports the others' acknowledgements of my
    /// messages (and my own devices').
    DeliveryReceipt {
        chat_id: ChatId,
        user_id: UserId,
        seq: Seq,
    },
    /// Someone I share a chat with (or I, on another device) changed their
    /// display name, handle or bio.
    ProfileChanged(UserProfile),
    Presence {
        user_id: UserId,
        online: bool,
        last_seen_at: Option<Timestamp>,
    },
    /// This account joined a chat (was added, or created it elsewhere).
    ChatJoined(Box<ChatSummary>),
    /// This account is no longer a member of `chat_id`.
    ChatRemoved {
        chat_id: ChatId,
    },
    /// This account was invited to a group (it is no member until it
    /// accepts: [`Messenger::accept_invitation`](crate::Messenger::accept_invitation)).
    Invited(Invitation),
    /// An invitation is gone (accepted or declined on some device).
    InvitationClosed {
        chat_id: ChatId,
    },
    /// The server now lists other keys for `user_id` than the pinned ones.
    /// Their messages signed with the new key are flagged
    /// ([`Verification::KeyChanged`](crate::Verification::KeyChanged)) and nothing is encrypted to the new key
    /// until the user accepts it. Reported once per new key.
    KeyChanged {
        user_id: UserId,
        old_fingerprint: String,
        new_fingerprint: String,
    },
    Connection(ConnectionState),
    /// This subscriber read too slowly and missed `missed` events; reload
    /// from the local store ([`Messenger::stored_messages`](crate::Messenger::stored_messages)).
    Lagged {
        missed: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Verification;
    use ferrogram_core::proto::MessagePayload;

    fn message(seq: i64, text: &str) -> Message {
        Message {
            chat_id: ChatId(1),
            seq: Seq::new(seq),
            sender: UserId(7),
            client_msg_id: format!("m{seq}"),
            sent_at: Timestamp::EPOCH,
            at: Timestamp::EPOCH,
            payload: Some(MessagePayload::text(text)),
            verification: Verification::Trusted,
            edited_seq: None,
            deleted: false,
        }
    }

    #[test]
    fn history_pages_fold_edits_and_deletions() {
        let edit = |seq, target, sender, verification| {
            ChatEntry::Edited(MessageEdit {
                chat_id: ChatId(1),
                seq: Seq::new(seq),
                target_seq: Seq::new(target),
                sender: UserId(sender),
                at: Timestamp::EPOCH,
                payload: Some(MessagePayload::text("edited")),
                verification,
            })
        };
        let page = History {
            entries: vec![
                ChatEntry::Message(message(1, "one")),
                ChatEntry::Message(message(2, "two")),
                ChatEntry::Message(message(3, "three")),
                edit(4, 1, 7, Verification::Trusted),
                // Someone else's edit of message 2 is ignored.
                edit(5, 2, 8, Verification::Trusted),
                // A flagged edit never replaces a trusted text.
                edit(6, 3, 7, Verification::Invalid { reason: "x".into() }),
                ChatEntry::Deleted(MessageDeletion {
                    chat_id: ChatId(1),
                    seq: Seq::new(7),
                    target_seq: Seq::new(2),
                    sender: UserId(7),
                    at: Timestamp::EPOCH,
                }),
            ],
            more: false,
        };
        let folded = page.messages();
        assert_eq!(folded[0].text(), Some("edited"));
        assert_eq!(folded[0].edited_seq, Some(Seq::new(4)));
        assert!(folded[1].deleted && folded[1].payload.is_none());
        assert_eq!(folded[2].text(), Some("three"));
        assert_eq!(folded[2].edited_seq, Some(Seq::new(6)));
    }

    #[test]
    fn events_serialize_with_a_tag() {
        let event = ClientEvent::KeyChanged {
            user_id: UserId(3),
            old_fingerprint: "A".into(),
            new_fingerprint: "B".into(),
        };
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(v["event"], "key_changed");
        let v = serde_json::to_value(ClientEvent::MessageReceived(message(1, "hi"))).unwrap();
        assert_eq!(v["event"], "message_received");
        assert_eq!(v["payload"]["text"], "hi");
        assert_eq!(v["verification"]["state"], "trusted");
    }
}

//! The chat and message subcommands of ferrogram-cli, on the library's
//! [`Messenger`].
//!
//! Commands that encrypt, decrypt or receive (`send`, `edit`, `history`,
//! `watch`) open the private keys kept by `login` in `keys.json` with the
//! password (asked on the terminal, or the first line of standard input).
//! The rest need no password. Received messages and contacts' pinned keys
//! live in a local store per account under the data folder; `watch` reports
//! each message once per device, so a second `watch` shows only newer ones.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use ferrogram_core::ids::{ChatId, Seq, UserId};
use ferrogram_core::proto::{Chat, ChatKind, ChatSummary, MessagePayload, Role, UserProfile};
use serde_json::json;

use super::{exit, files, format_time, CliError, Ctx};
use ferrogram_client::{
    ClientEvent, ConnectionState, EventStream, Message, Messenger, MessengerError,
    MessengerOptions, Session, Store, Verification,
};

/// Subcommands for chats and messages (flattened into the top level).
#[derive(Debug, Subcommand)]
pub(super) enum MessagingCommand {
    /// List my chats.
    Chats,
    /// Direct chats.
    Chat {
        #[command(subcommand)]
        action: ChatAction,
    },
    /// Groups: new, add, remove, rename, leave, role, transfer.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Send a message (end-to-end encrypted for every member, signed).
    Send {
        /// A chat id, a group's title, or @handle for the direct chat.
        chat: String,
        /// The text (Markdown); several words are joined with spaces.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// The seq of the message this one answers.
        #[arg(long, value_name = "SEQ")]
        reply_to: Option<Seq>,
    },
    /// Show a chat's newest messages, verified and decrypted.
    History {
        chat: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only messages before this seq (to page back).
        #[arg(long, value_name = "SEQ")]
        before: Option<Seq>,
    },
    /// Mark a chat read, up to its newest event or to SEQ.
    Read { chat: String, seq: Option<Seq> },
    /// Replace the text of one of my messages.
    Edit {
        chat: String,
        seq: Seq,
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Delete one of my messages for everyone (`delete` deletes the account).
    #[command(name = "delete-message", visible_alias = "unsend")]
    DeleteMessage { chat: String, seq: Seq },
    /// Print incoming messages as they arrive, one per line (JSON lines with
    /// --json), first those that arrived while away. Each message is shown
    /// once per device.
    Watch {
        /// Only this chat (id, title or @handle).
        #[arg(long)]
        chat: Option<String>,
        /// Only messages from other accounts.
        #[arg(long)]
        incoming: bool,
        /// Stop after this many messages (failing if the time-out comes first).
        #[arg(long, value_name = "N")]
        count: Option<usize>,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
    /// Show the safety number with a contact, to compare in person.
    SafetyNumber { handle: String },
    /// Record that the safety number with a contact matched.
    VerifyKey {
        handle: String,
        /// The contact's key changed and the new safety number matched:
        /// accept the new key (then it is marked verified).
        #[arg(long)]
        accept_change: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum ChatAction {
    /// Open (or create) the direct chat with a user.
    New { handle: String },
}

#[derive(Debug, Subcommand)]
pub(super) enum GroupAction {
    /// Create a group with me as owner.
    New { title: String, handles: Vec<String> },
    /// Add members (admins).
    Add {
        chat: String,
        #[arg(required = true)]
        handles: Vec<String>,
    },
    /// Remove a member (admins).
    Remove { chat: String, handle: String },
    /// Rename (admins).
    Rename { chat: String, title: String },
    /// Leave the group (an owner transfers ownership first).
    Leave { chat: String },
    /// Make a member admin or member (owner).
    Role {
        chat: String,
        handle: String,
        role: RoleArg,
    },
    /// Hand ownership to another member (owner).
    Transfer { chat: String, handle: String },
    /// My pending invitations to groups.
    Invitations,
    /// Join a group I was invited to (the chat id `group invitations` shows).
    Accept { chat_id: i64 },
    /// Decline an invitation to a group.
    Decline { chat_id: i64 },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(super) enum RoleArg {
    Admin,
    Member,
}

impl From<MessengerError> for CliError {
    fn from(e: MessengerError) -> Self {
        let (status, kind) = match &e {
            MessengerError::Client(_) => {
                let MessengerError::Client(inner) = e else {
                    unreachable!()
                };
                return inner.into();
            }
            MessengerError::Timeout { .. } | MessengerError::ConnectionLost { .. } => {
                (exit::UNREACHABLE, "unreachable")
            }
            MessengerError::Offline(_) => (exit::UNREACHABLE, "offline"),
            MessengerError::KeyChanged { .. } => (exit::FAILURE, "key_changed"),
            MessengerError::Locked => (exit::AUTH, "locked"),
            MessengerError::NoKeyChange(_) => (exit::FAILURE, "no_key_change"),
            MessengerError::Store(_) | MessengerError::NoStore | MessengerError::Encode { .. } => {
                (exit::FAILURE, "local")
            }
            MessengerError::Crypto(_) => (exit::FAILURE, "crypto"),
        };
        Self {
            status,
            kind,
            code: None,
            message: e.to_string(),
        }
    }
}

/// What a command needs from the messenger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Commands only (no password).
    Commands,
    /// The private keys (send, edit, history).
    Keys,
    /// The keys and receiving (watch).
    Sync,
}

/// The data folder: --data-dir, else `data` in an explicitly chosen config
/// folder (so tests and scripts stay self-contained), else
/// `$XDG_DATA_HOME/ferrogram`, else `~/.local/share/ferrogram`.
fn data_dir(ctx: &Ctx<'_, '_>) -> PathBuf {
    if let Some(dir) = &ctx.args.data_dir {
        return dir.clone();
    }
    if ctx.args.config_dir.is_some() {
        return ctx.dir.join("data");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("ferrogram");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("ferrogram"),
        None => ctx.dir.join("data"),
    }
}

/// Keeps the session's keys (sealed with the password-derived key) for
/// later message commands. Called after `login` and `passwd`.
pub(super) async fn save_keys(ctx: &Ctx<'_, '_>, session: &Session) -> Result<(), CliError> {
    if let Some(locked) = session.locked_keys().await? {
        files::save_keys(&ctx.dir, &locked).map_err(CliError::local)?;
    }
    Ok(())
}

async fn open(ctx: &mut Ctx<'_, '_>, need: Need) -> Result<(Messenger, EventStream), CliError> {
    let (session, _) = ctx.stored_session().await?;
    if need != Need::Commands {
        let locked = files::load_keys(&ctx.dir)
            .map_err(CliError::local)?
            .ok_or_else(|| CliError {
                status: exit::AUTH,
                kind: "locked",
                code: None,
                message: "no keys are kept on this device for the stored session: log in \
                          again (ferrogram-cli login --email ...)"
                    .to_owned(),
            })?;
        let password = ctx.password("Password (to open your keys): ")?;
        session.unlock(&password, &locked).await?;
    }
    let user = session.user_id();
    let path = Store::path_for(&data_dir(ctx), session.client().addr(), user);
    let store = Store::open(path, user).map_err(MessengerError::from)?;
    let options = MessengerOptions {
        sync: need == Need::Sync,
        // `watch` prints a long backlog in full rather than skipping.
        event_capacity: 1 << 16,
        ..MessengerOptions::default()
    };
    Ok(Messenger::connect(Arc::new(session), Some(store), options).await?)
}

async fn user(messenger: &Messenger, handle: &str) -> Result<UserProfile, CliError> {
    Ok(messenger
        .session()
        .get_user(handle.trim_start_matches('@'))
        .await?)
}

/// A chat id, `@handle` (the direct chat, opened if new), or a chat's title.
async fn chat_id(messenger: &Messenger, reference: &str) -> Result<ChatId, CliError> {
    if reference.starts_with('@') {
        let peer = user(messenger, reference).await?;
        return Ok(messenger.create_direct(peer.id).await?.id);
    }
    if let Ok(id) = reference.parse::<i64>() {
        return Ok(ChatId(id));
    }
    let chats = messenger.list_chats().await?;
    let named: Vec<&ChatSummary> = chats
        .iter()
        .filter(|c| c.title.as_deref() == Some(reference))
        .collect();
    match named.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError::local(format!(
            "no chat called {reference:?}: give a chat id (see `ferrogram-cli chats`) or @handle"
        ))),
        many => Err(CliError::local(format!(
            "{} chats are called {reference:?} (ids {}): give the id",
            many.len(),
            many.iter()
                .map(|c| c.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Handles of a chat's current members, by user id.
async fn member_names(messenger: &Messenger, chat: ChatId) -> HashMap<UserId, String> {
    messenger
        .get_chat(chat)
        .await
        .map(|c| {
            c.members
                .into_iter()
                .map(|m| (m.user.id, m.user.handle))
                .collect()
        })
        .unwrap_or_default()
}

fn name(names: &HashMap<UserId, String>, user: UserId) -> String {
    names
        .get(&user)
        .map_or_else(|| format!("user {user}"), |h| format!("@{h}"))
}

fn describe_chat(chat: &Chat, me: UserId) -> String {
    let members = |chat: &Chat| {
        chat.members
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::Owner => " (owner)",
                    Role::Admin => " (admin)",
                    Role::Member => "",
                };
                format!("@{}{role}", m.user.handle)
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match chat.kind {
        ChatKind::Direct => {
            let peer = chat
                .members
                .iter()
                .find(|m| m.user.id != me)
                .map_or_else(|| "myself".to_owned(), |m| format!("@{}", m.user.handle));
            format!("Chat {} with {peer}.", chat.id)
        }
        ChatKind::Group if chat.invited.is_empty() => format!(
            "Group {} {:?}: {}.",
            chat.id,
            chat.title.as_deref().unwrap_or(""),
            members(chat)
        ),
        ChatKind::Group => format!(
            "Group {} {:?}: {}. Invited (they join when they accept): {} user(s).",
            chat.id,
            chat.title.as_deref().unwrap_or(""),
            members(chat),
            chat.invited.len()
        ),
    }
}

/// One line for a message: `[seq] time @sender: text` and its trust flag.
fn message_line(message: &Message, names: &HashMap<UserId, String>) -> String {
    let mut line = format!(
        "[{}] {} {}: ",
        message.seq,
        format_time(message.at),
        name(names, message.sender)
    );
    match (&message.payload, message.deleted) {
        (_, true) => line.push_str("(deleted)"),
        (Some(payload), false) => {
            if let Some(to) = payload.reply_to {
                let _ = write!(line, "(reply to [{to}]) ");
            }
            line.push_str(&payload.text);
        }
        (None, false) => line.push_str("(unreadable)"),
    }
    if message.edited_seq.is_some() && !message.deleted {
        line.push_str(" (edited)");
    }
    match &message.verification {
        Verification::Own | Verification::Trusted => {}
        Verification::Verified => line.push_str(" [verified]"),
        Verification::KeyChanged { fingerprint } => {
            let _ = write!(
                line,
                " [WARNING: signed with a new, unaccepted key {fingerprint}]"
            );
        }
        Verification::Invalid { reason } => {
            let _ = write!(line, " [REFUSED: {reason}]");
        }
    }
    line
}

fn message_json(message: &Message, names: &HashMap<UserId, String>) -> serde_json::Value {
    let mut value = serde_json::to_value(message).unwrap_or_default();
    if let Some(handle) = names.get(&message.sender) {
        value["sender_handle"] = json!(handle);
    }
    value
}

fn text_of(words: &[String]) -> String {
    words.join(" ")
}

pub(super) async fn run(ctx: &mut Ctx<'_, '_>, command: &MessagingCommand) -> Result<(), CliError> {
    match command {
        MessagingCommand::Chats => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let chats = messenger.list_chats().await?;
            ctx.print(&json!({ "chats": chats }), || {
                if chats.is_empty() {
                    return "No chats yet: ferrogram-cli chat new @handle".to_owned();
                }
                let mut text = String::new();
                for c in &chats {
                    let what = match (&c.kind, &c.peer) {
                        (ChatKind::Direct, Some(peer)) => {
                            format!("@{} ({})", peer.handle, peer.display_name)
                        }
                        _ => format!("{:?}", c.title.as_deref().unwrap_or("")),
                    };
                    let _ = writeln!(
                        text,
                        "{:>6}  {:<6}  {what}  {} member(s), {} unread",
                        c.id.to_string(),
                        match c.kind {
                            ChatKind::Direct => "direct",
                            ChatKind::Group => "group",
                        },
                        c.member_count,
                        c.unread_count
                    );
                }
                text.trim_end().to_owned()
            })
        }
        MessagingCommand::Chat {
            action: ChatAction::New { handle },
        } => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let peer = user(&messenger, handle).await?;
            let chat = messenger.create_direct(peer.id).await?;
            let me = messenger.user_id();
            ctx.print(&chat, || describe_chat(&chat, me))
        }
        MessagingCommand::Group { action } => group(ctx, action).await,
        MessagingCommand::Send {
            chat,
            text,
            reply_to,
        } => {
            let (messenger, _) = open(ctx, Need::Keys).await?;
            let chat_id = chat_id(&messenger, chat).await?;
            let payload = MessagePayload {
                reply_to: *reply_to,
                ..MessagePayload::text(text_of(text))
            };
            let ack = messenger.send(chat_id, payload).await?;
            ctx.print(&ack, || {
                format!("Sent to chat {} as message {}.", ack.chat_id, ack.seq)
            })
        }
        MessagingCommand::History {
            chat,
            limit,
            before,
        } => {
            let (messenger, _) = open(ctx, Need::Keys).await?;
            let chat_id = chat_id(&messenger, chat).await?;
            let page = messenger.history(chat_id, *before, None, *limit).await?;
            let names = member_names(&messenger, chat_id).await;
            let messages = page.messages();
            let out = json!({
                "chat_id": chat_id,
                "messages": messages.iter().map(|m| message_json(m, &names)).collect::<Vec<_>>(),
                "more": page.more,
            });
            ctx.print(&out, || {
                if messages.is_empty() {
                    return "No messages.".to_owned();
                }
                let mut text = String::new();
                if page.more {
                    let oldest = page
                        .entries
                        .first()
                        .map_or(Seq::ZERO, ferrogram_client::ChatEntry::seq);
                    let _ = writeln!(text, "(older messages: --before {oldest})");
                }
                for m in &messages {
                    let _ = writeln!(text, "{}", message_line(m, &names));
                }
                text.trim_end().to_owned()
            })
        }
        MessagingCommand::Read { chat, seq } => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let chat_id = chat_id(&messenger, chat).await?;
            let seq = match seq {
                Some(seq) => *seq,
                None => messenger.get_chat(chat_id).await?.last_seq,
            };
            messenger.mark_read(chat_id, seq).await?;
            ctx.print(&json!({"chat_id": chat_id, "read_seq": seq}), || {
                format!("Chat {chat_id} read up to {seq}.")
            })
        }
        MessagingCommand::Edit { chat, seq, text } => {
            let (messenger, _) = open(ctx, Need::Keys).await?;
            let chat_id = chat_id(&messenger, chat).await?;
            let ack = messenger
                .edit(chat_id, *seq, MessagePayload::text(text_of(text)))
                .await?;
            ctx.print(&ack, || format!("Message {seq} edited."))
        }
        MessagingCommand::DeleteMessage { chat, seq } => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let chat_id = chat_id(&messenger, chat).await?;
            let ack = messenger.delete(chat_id, *seq).await?;
            ctx.print(&ack, || format!("Message {seq} deleted for everyone."))
        }
        MessagingCommand::Watch {
            chat,
            incoming,
            count,
            timeout,
        } => watch(ctx, chat.as_deref(), *incoming, *count, *timeout).await,
        MessagingCommand::SafetyNumber { handle } => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let peer = user(&messenger, handle).await?;
            let keys = messenger.contact_keys(peer.id).await?;
            let mine = messenger.session().cached_me().fingerprint;
            let out = json!({
                "handle": peer.handle,
                "contact": keys,
                "my_fingerprint": mine,
            });
            ctx.print(&out, || {
                let mut text = format!(
                    "Safety number with @{} (compare it with them in person):\n{}\n\
                     @{}'s key: {}\nyour key:  {}\nstatus: {}",
                    peer.handle,
                    grouped(&keys.safety_number),
                    peer.handle,
                    keys.fingerprint,
                    mine,
                    if keys.verified {
                        "verified"
                    } else {
                        "not verified"
                    }
                );
                if let (Some(fp), Some(number)) =
                    (&keys.pending_fingerprint, &keys.pending_safety_number)
                {
                    let _ = write!(
                        text,
                        "\n\nWARNING: the server now lists another key for @{}: {fp}\n\
                         Its safety number would be:\n{}\nIf it matches what @{} shows, \
                         accept it: ferrogram-cli verify-key {} --accept-change",
                        peer.handle,
                        grouped(number),
                        peer.handle,
                        peer.handle
                    );
                }
                text
            })
        }
        MessagingCommand::VerifyKey {
            handle,
            accept_change,
        } => {
            let (messenger, _) = open(ctx, Need::Commands).await?;
            let peer = user(&messenger, handle).await?;
            let keys = messenger.contact_keys(peer.id).await?;
            if keys.pending_fingerprint.is_some() {
                if !accept_change {
                    return Err(CliError {
                        status: exit::FAILURE,
                        kind: "key_changed",
                        code: None,
                        message: format!(
                            "@{}'s key changed: compare the new safety number \
                             (ferrogram-cli safety-number {}), then run this again with \
                             --accept-change",
                            peer.handle, peer.handle
                        ),
                    });
                }
                messenger.accept_key_change(peer.id).await?;
            }
            messenger.mark_verified(peer.id).await?;
            let keys = messenger.contact_keys(peer.id).await?;
            ctx.print(&keys, || {
                format!(
                    "@{}'s key {} is marked verified.",
                    peer.handle, keys.fingerprint
                )
            })
        }
    }
}

/// A safety number as three lines of four groups.
fn grouped(number: &str) -> String {
    number
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|line| format!("  {}", line.join(" ")))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn group(ctx: &mut Ctx<'_, '_>, action: &GroupAction) -> Result<(), CliError> {
    let (messenger, _) = open(ctx, Need::Commands).await?;
    let me = messenger.user_id();
    let chat = match action {
        GroupAction::Invitations => {
            let invitations = messenger.invitations().await?;
            return ctx.print(&json!({ "invitations": invitations }), || {
                if invitations.is_empty() {
                    return "No pending invitations.".to_owned();
                }
                invitations
                    .iter()
                    .map(|i| {
                        let by = i.inviter.as_ref().map_or_else(
                            || "a deleted account".to_owned(),
                            |u| format!("@{}", u.handle),
                        );
                        format!(
                            "{}  {:?} ({} members), invited by {by}",
                            i.chat_id,
                            i.title.as_deref().unwrap_or(""),
                            i.member_count
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        GroupAction::Accept { chat_id } => messenger.accept_invitation(ChatId(*chat_id)).await?,
        GroupAction::Decline { chat_id } => {
            messenger.decline_invitation(ChatId(*chat_id)).await?;
            return ctx.print(&json!({ "declined": chat_id }), || {
                format!("Declined the invitation to {chat_id}.")
            });
        }
        GroupAction::New { title, handles } => {
            let mut ids = Vec::with_capacity(handles.len());
            for handle in handles {
                ids.push(user(&messenger, handle).await?.id);
            }
            messenger.create_group(title, &ids).await?
        }
        GroupAction::Add { chat, handles } => {
            let chat_id = chat_id(&messenger, chat).await?;
            let mut ids = Vec::with_capacity(handles.len());
            for handle in handles {
                ids.push(user(&messenger, handle).await?.id);
            }
            messenger.add_members(chat_id, &ids).await?
        }
        GroupAction::Remove { chat, handle } => {
            let chat_id = chat_id(&messenger, chat).await?;
            let member = user(&messenger, handle).await?;
            messenger.remove_member(chat_id, member.id).await?
        }
        GroupAction::Rename { chat, title } => {
            let chat_id = chat_id(&messenger, chat).await?;
            messenger.rename_chat(chat_id, title).await?
        }
        GroupAction::Leave { chat } => {
            let chat_id = chat_id(&messenger, chat).await?;
            messenger.leave_chat(chat_id).await?;
            return ctx.print(&json!({"left": chat_id}), || {
                format!("Left chat {chat_id}.")
            });
        }
        GroupAction::Role { chat, handle, role } => {
            let chat_id = chat_id(&messenger, chat).await?;
            let member = user(&messenger, handle).await?;
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Member => Role::Member,
            };
            messenger.set_role(chat_id, member.id, role).await?
        }
        GroupAction::Transfer { chat, handle } => {
            let chat_id = chat_id(&messenger, chat).await?;
            let member = user(&messenger, handle).await?;
            messenger.transfer_ownership(chat_id, member.id).await?
        }
    };
    ctx.print(&chat, || describe_chat(&chat, me))
}

async fn watch(
    ctx: &mut Ctx<'_, '_>,
    chat: Option<&str>,
    incoming: bool,
    count: Option<usize>,
    timeout: Option<u64>,
) -> Result<(), CliError> {
    let (messenger, mut events) = open(ctx, Need::Sync).await?;
    let only_chat = match chat {
        Some(reference) => Some(chat_id(&messenger, reference).await?),
        None => None,
    };
    let me = messenger.user_id();
    let deadline = timeout.map(|secs| tokio::time::Instant::now() + Duration::from_secs(secs));
    let mut names: HashMap<ChatId, HashMap<UserId, String>> = HashMap::new();
    let mut shown = 0usize;
    if count == Some(0) {
        return Ok(());
    }
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => events.next().await,
        };
        let Some(event) = next else {
            return Err(CliError::local("the messenger stopped"));
        };
        match event {
            ClientEvent::MessageReceived(message) => {
                if only_chat.is_some_and(|c| c != message.chat_id)
                    || (incoming && message.sender == me)
                {
                    continue;
                }
                if let Entry::Vacant(slot) = names.entry(message.chat_id) {
                    slot.insert(member_names(&messenger, message.chat_id).await);
                }
                let chat_names = names.get(&message.chat_id).cloned().unwrap_or_default();
                let line = if ctx.args.json {
                    message_json(&message, &chat_names).to_string()
                } else {
                    format!(
                        "chat {} {}",
                        message.chat_id,
                        message_line(&message, &chat_names)
                    )
                };
                writeln!(ctx.io.stdout, "{line}")
                    .and_then(|()| ctx.io.stdout.flush())
                    .map_err(|e| CliError::local(format!("output: {e}")))?;
                shown += 1;
                if count.is_some_and(|n| shown >= n) {
                    return Ok(());
                }
            }
            ClientEvent::KeyChanged {
                user_id,
                new_fingerprint,
                ..
            } => {
                let _ = writeln!(
                    ctx.io.stderr,
                    "warning: the keys of user {user_id} changed (new fingerprint \
                     {new_fingerprint}); their messages are flagged until you accept the change"
                );
            }
            ClientEvent::Connection(ConnectionState::Reconnecting { attempt, .. }) => {
                ctx.note(&format!(
                    "connection lost; reconnecting (attempt {attempt})"
                ));
            }
            ClientEvent::Connection(ConnectionState::Offline { reason }) => {
                // Nothing here closes the messenger: the session ended.
                return Err(CliError {
                    status: exit::AUTH,
                    kind: "offline",
                    code: None,
                    message: format!(
                        "{reason} (the session has ended: log in again with `ferrogram-cli login`)"
                    ),
                });
            }
            ClientEvent::Lagged { missed } => {
                ctx.note(&format!("{missed} events were skipped (output too slow)"));
            }
            _ => {}
        }
    }
    match count {
        Some(n) if shown < n => Err(CliError::local(format!(
            "only {shown} of {n} messages arrived within {} s",
            timeout.unwrap_or(0)
        ))),
        _ => Ok(()),
    }
}

//! The node-local registry of sockets: which contact sockets, staff sessions and monitoring
//! supervisors this node holds, and the fan-out of routing events to them.
//!
//! A subscriber that cannot keep up is dropped rather than buffered without bound: its socket then
//! closes and the client resumes from the stream, so nothing is lost and memory stays flat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use crate::contact::QueueStatus;
use crate::events::Event;

/// What a socket task receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(Arc<Event>),
    /// A waiting contact's place in the queue (the node asks for all of its contacts in batches).
    /// Boxed: every subscriber's channel holds room for 32 deliveries, so a delivery stays two
    /// words (unboxed, this one would make every idle contact's channel four times larger).
    Queue(Box<QueueStatus>),
    /// Live events may have been missed (the subscription was lost): re-read the state.
    Resync,
}

/// Room for bursts per subscriber before it is considered stuck.
const QUEUE: usize = 64;

type Subs = HashMap<String, Vec<(u64, mpsc::Sender<Delivery>)>>;

#[derive(Default)]
struct Registry {
    /// Contact sockets by conversation id.
    contacts: Subs,
    /// Staff sessions by username (a counsellor may have several tabs).
    staff: Subs,
    /// Staff sessions following a conversation (its counsellor's, and monitoring supervisors').
    watchers: Subs,
}

/// The node's sockets; cheap to share.
#[derive(Default, Clone)]
pub struct Hub {
    registry: Arc<Mutex<Registry>>,
    next: Arc<AtomicU64>,
}

/// Membership of one socket; leaving happens on drop, so a panicking or cancelled task never leaks.
pub struct Subscription {
    hub: Hub,
    id: u64,
    pub receiver: mpsc::Receiver<Delivery>,
    sender: mpsc::Sender<Delivery>,
}

impl Subscription {
    /// Also follow conversation `conv` (its messages and changes), e.g. after an assignment.
    pub fn watch(&self, conv: &str) {
        let mut reg = self.hub.lock();
        let list = reg.watchers.entry(conv.to_owned()).or_default();
        if !list.iter().any(|(id, _)| *id == self.id) {
            list.push((self.id, self.sender.clone()));
        }
    }

    pub fn unwatch(&self, conv: &str) {
        let mut reg = self.hub.lock();
        remove(&mut reg.watchers, conv, self.id);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut guard = self.hub.lock();
        let reg = &mut *guard;
        let id = self.id;
        for subs in [&mut reg.contacts, &mut reg.staff, &mut reg.watchers] {
            subs.retain(|_, list| {
                list.retain(|(i, _)| *i != id);
                !list.is_empty()
            });
        }
    }
}

fn remove(subs: &mut Subs, key: &str, id: u64) {
    if let Some(list) = subs.get_mut(key) {
        list.retain(|(i, _)| *i != id);
        if list.is_empty() {
            subs.remove(key);
        }
    }
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // A poisoned lock only means another task panicked mid-update; the maps stay usable.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn join(&self, pick: fn(&mut Registry) -> &mut Subs, key: &str) -> Subscription {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        pick(&mut self.lock())
            .entry(key.to_owned())
            .or_default()
            .push((id, sender.clone()));
        Subscription {
            hub: self.clone(),
            id,
            receiver,
            sender,
        }
    }

    /// A contact's socket for conversation `conv`.
    pub fn join_contact(&self, conv: &str) -> Subscription {
        self.join(|r| &mut r.contacts, conv)
    }

    /// A staff member's session.
    pub fn join_staff(&self, username: &str) -> Subscription {
        self.join(|r| &mut r.staff, username)
    }

    /// Who this node holds sockets for: (staff usernames, contact conversations), for heartbeats.
    pub fn presence(&self) -> (Vec<String>, Vec<String>) {
        let reg = self.lock();
        (
            reg.staff.keys().cloned().collect(),
            reg.contacts.keys().cloned().collect(),
        )
    }

    /// Conversations whose contact is connected to this node, those `keep` keeps.
    pub fn contact_conversations(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let reg = self.lock();
        reg.contacts.keys().filter(|c| keep(c)).cloned().collect()
    }

    /// Whether any session of `username` is connected to this node.
    pub fn has_staff(&self, username: &str) -> bool {
        self.lock().staff.contains_key(username)
    }

    /// Hands an event to every local socket it concerns.
    pub fn deliver(&self, event: Event) {
        let event = Arc::new(event);
        let delivery = Delivery::Event(event.clone());
        let mut sent_to = Vec::new();
        let mut reg = self.lock();
        if let Some(conv) = event.conversation() {
            if contact_sees(&event) {
                send(&mut reg.contacts, conv, &delivery, &mut sent_to);
            }
            send(&mut reg.watchers, conv, &delivery, &mut sent_to);
        }
        if let Some(agent) = staff_target(&event) {
            send(&mut reg.staff, agent, &delivery, &mut sent_to);
        }
    }

    /// Tells the local contact sockets of conversation `conv` their place in the queue.
    pub fn tell_queue(&self, conv: &str, status: QueueStatus) {
        send(
            &mut self.lock().contacts,
            conv,
            &Delivery::Queue(Box::new(status)),
            &mut Vec::new(),
        );
    }

    /// Tells every local socket to re-read its state (after live events may have been missed).
    pub fn resync_all(&self) {
        let mut guard = self.lock();
        let reg = &mut *guard;
        for subs in [&mut reg.contacts, &mut reg.staff] {
            for list in subs.values_mut() {
                list.retain(|(_, tx)| tx.try_send(Delivery::Resync).is_ok());
            }
            subs.retain(|_, list| !list.is_empty());
        }
    }
}

/// Sends to the subscribers under `key` that have not had this delivery yet; drops the stuck ones.
fn send(subs: &mut Subs, key: &str, delivery: &Delivery, sent_to: &mut Vec<u64>) {
    let Some(list) = subs.get_mut(key) else {
        return;
    };
    list.retain(|(id, tx)| {
        if sent_to.contains(id) {
            return true;
        }
        sent_to.push(*id);
        match tx.try_send(delivery.clone()) {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!("a socket could not keep up; closing it so its client resumes");
                false
            }
        }
    });
    if list.is_empty() {
        subs.remove(key);
    }
}

/// Which events a contact's socket hears: assignment, hand-overs, the end, and messages meant for
/// them (not their own, not whispers).
fn contact_sees(event: &Event) -> bool {
    match event {
        Event::Assigned { .. } | Event::Transferred { .. } | Event::Ended { .. } => true,
        Event::Msg { f, w, .. } => !w && f != "contact",
        Event::Typing { f, .. } => f != "contact",
        _ => false,
    }
}

/// The counsellor an event is addressed to, if any.
fn staff_target(event: &Event) -> Option<&str> {
    match event {
        Event::Offer { agent, .. }
        | Event::Revoked { agent, .. }
        | Event::Assigned { agent, .. }
        | Event::Transferred { agent, .. }
        | Event::Status { agent, .. } => Some(agent),
        Event::Ended { agent, .. }
        | Event::Msg { agent, .. }
        | Event::Urgency { agent, .. }
        | Event::Typing { agent, .. } => agent.as_deref(),
        Event::Queued { .. } | Event::Erased { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_stays_two_words() {
        // Each socket's channel allocates room for deliveries in blocks: their size is memory
        // per idle contact.
        assert_eq!(std::mem::size_of::<Delivery>(), 16);
    }
}

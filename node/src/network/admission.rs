//! Handshake slots: which accepted TCP connections may go on to the Noise handshake
//! (ADR 0018).
//!
//! Until the handshake ends the remote key is unknown, so the allow list cannot act yet; what
//! bounds a stranger is its source address. A connection from an address that is not a
//! registered peer's may take a slot only if its address holds fewer than
//! `handshakes_per_address_max` and strangers together hold fewer than
//! `handshakes_pending_max - handshake_slots_reserved`; one from a registered peer's address
//! (where a registered peer was dialled, what it reported through identify, where it
//! connected from) may take any free slot. However many idle connections strangers hold, a
//! validator's peers still reach its handshake, which the handshake timeout then bounds.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::multiaddr::Protocol;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

/// Why a connection was refused a handshake slot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum HandshakeRefused {
    #[error("{address} already holds {held} handshakes, the most one unregistered address may")]
    PerAddress { address: IpAddr, held: u32 },
    #[error(
        "{held} handshakes are pending, the most allowed for {}",
        if *.registered { "anyone" } else { "unregistered addresses" }
    )]
    Slots { held: usize, registered: bool },
}

/// The bounds [`HandshakeSlots`] enforces (from `NetworkLimits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SlotLimits {
    pub(super) pending_max: u32,
    pub(super) reserved: u32,
    pub(super) per_address_max: u32,
}

/// The pure bookkeeping of handshake slots, by connection.
#[derive(Debug)]
pub(super) struct HandshakeSlots {
    limits: SlotLimits,
    /// Pending connections: their source address and whether it was a registered one when
    /// the slot was taken (so that the counts stay right if the set changes meanwhile).
    pending: HashMap<ConnectionId, (IpAddr, bool)>,
    per_address: HashMap<IpAddr, u32>,
    strangers: usize,
    registered: HashSet<IpAddr>,
}

impl HandshakeSlots {
    pub(super) fn new(limits: SlotLimits) -> Self {
        Self {
            limits,
            pending: HashMap::new(),
            per_address: HashMap::new(),
            strangers: 0,
            registered: HashSet::new(),
        }
    }

    /// Replaces the set of registered peers' addresses.
    pub(super) fn set_registered(&mut self, addresses: HashSet<IpAddr>) {
        self.registered = addresses;
    }

    /// Takes a slot for `connection` from `address`, or says why not (and changes nothing).
    pub(super) fn take(
        &mut self,
        connection: ConnectionId,
        address: IpAddr,
    ) -> Result<(), HandshakeRefused> {
        let address = address.to_canonical();
        let registered = self.registered.contains(&address);
        let held = self.pending.len();
        if held >= self.limits.pending_max as usize {
            return Err(HandshakeRefused::Slots { held, registered });
        }
        if !registered {
            let strangers_max = (self.limits.pending_max - self.limits.reserved) as usize;
            if self.strangers >= strangers_max {
                return Err(HandshakeRefused::Slots {
                    held: self.strangers,
                    registered,
                });
            }
            let from_address = self.per_address.get(&address).copied().unwrap_or(0);
            if from_address >= self.limits.per_address_max {
                return Err(HandshakeRefused::PerAddress {
                    address,
                    held: from_address,
                });
            }
            *self.per_address.entry(address).or_insert(0) += 1;
            self.strangers += 1;
        }
        self.pending.insert(connection, (address, registered));
        Ok(())
    }

    /// Frees the slot of `connection`, if it holds one (its handshake ended either way).
    pub(super) fn release(&mut self, connection: ConnectionId) {
        let Some((address, registered)) = self.pending.remove(&connection) else {
            return;
        };
        if registered {
            return;
        }
        self.strangers -= 1;
        if let Some(count) = self.per_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&address);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// The IP address of a multiaddress that starts with one.
pub(super) fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    match address.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

/// The behaviour the swarm consults first for every inbound connection.
#[derive(Debug)]
pub(super) struct Behaviour {
    slots: HandshakeSlots,
}

impl Behaviour {
    pub(super) fn new(limits: SlotLimits) -> Self {
        Self {
            slots: HandshakeSlots::new(limits),
        }
    }

    /// Replaces the set of registered peers' addresses (canonical form, no unspecified ones).
    pub(super) fn set_registered(&mut self, addresses: HashSet<IpAddr>) {
        self.slots.set_registered(addresses);
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // The TCP transport always reports an IP address; anything else is not ours to bound.
        let Some(address) = ip_of(remote_addr) else {
            return Ok(());
        };
        self.slots
            .take(connection_id, address)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.slots.release(connection_id);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        // A handshake that failed, timed out or was refused by a later behaviour.
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.slots.release(connection_id);
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SlotLimits = SlotLimits {
        pending_max: 8,
        reserved: 3,
        per_address_max: 2,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let mut slots = HandshakeSlots::new(LIMITS);
        slots.take(ConnectionId::new_unchecked(1), ip(9)).unwrap();
        slots.take(ConnectionId::new_unchecked(2), ip(9)).unwrap();
        assert_eq!(
            slots.take(ConnectionId::new_unchecked(3), ip(9)),
            Err(HandshakeRefused::PerAddress {
                address: ip(9),
                held: 2
            })
        );
        assert_eq!(slots.pending(), 2, "a refusal takes no slot");
        slots.release(ConnectionId::new_unchecked(1));
        slots.take(ConnectionId::new_unchecked(4), ip(9)).unwrap();
    }

    #[test]
    fn strangers_leave_the_reserved_slots_to_registered_addresses() {
        let mut slots = HandshakeSlots::new(LIMITS);
        slots.set_registered(HashSet::from([ip(1)]));
        let mut next = 0;
        let mut connection = || {
            next += 1;
            ConnectionId::new_unchecked(next)
        };
        for stranger in 10..13 {
            for _ in 0..2 {
                if slots.take(connection(), ip(stranger)).is_err() {
                    break;
                }
            }
        }
        assert_eq!(slots.pending(), 5, "strangers fill 8 - 3 slots");
        assert_eq!(
            slots.take(connection(), ip(20)),
            Err(HandshakeRefused::Slots {
                held: 5,
                registered: false
            })
        );
        for _ in 0..3 {
            slots.take(connection(), ip(1)).unwrap();
        }
        assert_eq!(
            slots.take(connection(), ip(1)),
            Err(HandshakeRefused::Slots {
                held: 8,
                registered: true
            }),
            "every slot is bounded, registered or not"
        );
    }

    #[test]
    fn a_registered_address_has_no_per_address_bound_and_mapped_addresses_count_as_one() {
        let mut slots = HandshakeSlots::new(LIMITS);
        slots.set_registered(HashSet::from([ip(1)]));
        for id in 0..4 {
            slots.take(ConnectionId::new_unchecked(id), ip(1)).unwrap();
        }
        let mapped = match ip(9) {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            IpAddr::V6(_) => unreachable!(),
        };
        slots.take(ConnectionId::new_unchecked(10), ip(9)).unwrap();
        slots.take(ConnectionId::new_unchecked(11), mapped).unwrap();
        assert!(matches!(
            slots.take(ConnectionId::new_unchecked(12), ip(9)),
            Err(HandshakeRefused::PerAddress { .. })
        ));
    }

    #[test]
    fn a_slot_is_released_once() {
        let mut slots = HandshakeSlots::new(LIMITS);
        slots.take(ConnectionId::new_unchecked(1), ip(9)).unwrap();
        slots.release(ConnectionId::new_unchecked(1));
        slots.release(ConnectionId::new_unchecked(1));
        slots.release(ConnectionId::new_unchecked(7));
        assert_eq!(slots.pending(), 0);
        assert!(slots.per_address.is_empty() && slots.strangers == 0);
    }
}

//! The map between ledger keys and libp2p identities. Nothing outside this module sees a
//! `PeerId`: the node names peers by their ledger [`PublicKey`].

use hutong_core::crypto::{PublicKey, SecretKey};
use libp2p::PeerId;
use libp2p::identity::{self, Keypair};

use super::types::NetworkError;

/// Multihash code of the identity "hash", which libp2p uses to inline short keys (every
/// ed25519 key) into the peer id itself.
const MULTIHASH_IDENTITY_CODE: u64 = 0x00;

/// The libp2p keypair of the node key: the same ed25519 seed, so the same public key.
pub(super) fn keypair_of(node_key: &SecretKey) -> Result<Keypair, NetworkError> {
    let keypair = Keypair::ed25519_from_bytes(node_key.to_seed_bytes())
        .map_err(|_refused| NetworkError::InvalidNodeKey)?;
    let derived = public_key_of(&keypair.public().to_peer_id());
    // Both libraries implement RFC 8032 key derivation from the same seed; if they ever
    // disagree, every peer would refuse us as unregistered, so stop here instead.
    assert_eq!(
        derived,
        Some(node_key.public_key()),
        "libp2p derived a different ed25519 public key from the node key's seed"
    );
    Ok(keypair)
}

/// The peer id of a ledger key. Fails for 32 bytes that are not an ed25519 point.
pub(super) fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetworkError> {
    let ed25519 = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes()).map_err(|_| {
        NetworkError::InvalidPublicKey {
            key_hex: key.to_hex(),
        }
    })?;
    Ok(identity::PublicKey::from(ed25519).to_peer_id())
}

/// The ledger key of a peer id, if it inlines an ed25519 key (other key types hash theirs,
/// and are never registered).
pub(super) fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != MULTIHASH_IDENTITY_CODE {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = key.try_into_ed25519().ok()?;
    Some(PublicKey(ed25519.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_key_and_peer_id_map_both_ways() {
        let node_key = SecretKey::from_seed([9; 32]);
        let keypair = keypair_of(&node_key).unwrap();
        let peer = peer_id_of(&node_key.public_key()).unwrap();
        assert_eq!(keypair.public().to_peer_id(), peer);
        assert_eq!(public_key_of(&peer), Some(node_key.public_key()));
    }

    #[test]
    fn bytes_that_are_not_a_curve_point_are_refused() {
        // y = 2 has no matching x on edwards25519.
        let mut bytes = [0u8; 32];
        bytes[0] = 2;
        let key = PublicKey(bytes);
        assert_eq!(
            peer_id_of(&key),
            Err(NetworkError::InvalidPublicKey {
                key_hex: key.to_hex()
            })
        );
    }

    #[test]
    fn a_peer_id_without_an_inlined_ed25519_key_has_no_ledger_key() {
        assert_eq!(public_key_of(&PeerId::random()), None);
    }
}

//! Longest-prefix lookups over a set of networks without scanning it: for
//! each prefix length in use, truncate the address and look it up.

use std::collections::BTreeMap;

use ipnet::IpNet;

/// How many networks of each (family, prefix length) a collection holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PrefixLengths(BTreeMap<(bool, u8), usize>);

impl PrefixLengths {
    pub(crate) fn add(&mut self, net: IpNet) {
        *self.0.entry(key(net)).or_default() += 1;
    }

    pub(crate) fn remove(&mut self, net: IpNet) {
        let key = key(net);
        if let Some(count) = self.0.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                self.0.remove(&key);
            }
        }
    }

    /// The networks with a length in use that contain `net` (itself
    /// included), longest prefix first. At most 33 or 129 of them.
    pub(crate) fn containing(&self, net: IpNet) -> impl Iterator<Item = IpNet> + '_ {
        let v6 = matches!(net, IpNet::V6(_));
        self.0
            .range((v6, 0)..=(v6, net.prefix_len()))
            .rev()
            .filter_map(move |(&(_, len), _)| IpNet::new(net.addr(), len).ok().map(|n| n.trunc()))
    }
}

fn key(net: IpNet) -> (bool, u8) {
    (matches!(net, IpNet::V6(_)), net.prefix_len())
}

//! Network namespaces and veth pairs that tests create and always remove.

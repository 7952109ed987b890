//! CrowdSec's Local API (LAPI): the decision stream and its puller.

pub mod bouncer;
pub mod stream;

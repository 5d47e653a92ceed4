//! The local runner and the mailers of the embedded deployment.

//! Contract test suites for the ports.

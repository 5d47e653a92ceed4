//! `pj-runner run` end to end: real git against a local bare repository standing in for GitHub,
//! wiremock fakes of the model and GitHub APIs, and a receiver that checks every callback.

mod budget;
mod delivery;
mod failures;
mod fallback;
mod hygiene;
mod metadata;
mod rounds;
mod support;
mod untrusted;

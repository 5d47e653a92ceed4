//! The Pithy Jaunt runner: the agent that turns a task into a pull request, and the patch engine
//! that applies what models write.

pub mod agent;
pub mod context;
pub mod patch;

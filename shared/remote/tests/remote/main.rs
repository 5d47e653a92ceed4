//! The remote runners against wiremock fakes of GitHub's and Daytona's REST APIs, built from
//! their documented requests and answers.

mod daytona;
mod github;
mod support;

//! What the built-in kinds send out through: the two outbound HTTP clients and the courier of
//! outbound messages (email through SES, signed webhooks, SMS through GoHighLevel). Built with
//! the `outbound` feature, by the functions that send (`tasks`, `notify`, `sweeper`).

use std::sync::Arc;

use pj_core::Engine;
use pj_core::engine::Settings;
use pj_core::kinds::message::ChannelSender;
use pj_core::messages::Courier;
use pj_core::net::NetworkPolicy;
use pj_core::outbound::HttpClient;
use pj_core::ports::{Mailer, SecretSource};
use pj_outbound::GuardedClient;

use crate::wiring::Wiring;

/// The outbound HTTP clients, built once per execution environment (they hold the connection
/// pools).
#[derive(Clone)]
pub struct HttpClients {
    /// Requests to addresses users name (API calls, webhooks): through the address guard of
    /// the deployment's network policy (`PJ_ALLOW_PRIVATE_NETWORKS`).
    pub http: Arc<dyn HttpClient>,
    /// Requests to the services the operator configured (GoHighLevel's `GHL_API_URL`).
    pub service_http: Arc<dyn HttpClient>,
}

impl HttpClients {
    pub fn new(settings: &Settings) -> anyhow::Result<HttpClients> {
        Ok(HttpClients {
            http: Arc::new(GuardedClient::new(settings.repo_rules.network)?),
            service_http: Arc::new(GuardedClient::new(NetworkPolicy {
                allow_private: true,
            })?),
        })
    }
}

/// The courier of `engine`'s deployment: messages recorded in the table, sent by their channel
/// (email through SES from `engine`'s `email_from`), retried through the notify queue.
pub fn courier(
    wiring: &Wiring,
    engine: &Engine,
    clients: &HttpClients,
    secrets: Arc<dyn SecretSource>,
) -> Arc<Courier> {
    let mailer: Arc<dyn Mailer> = Arc::new(wiring.aws.ses_mailer());
    let sender = ChannelSender {
        mailer,
        http: clients.http.clone(),
        service_http: clients.service_http.clone(),
        secrets,
        settings: engine.settings.clone(),
    };
    Arc::new(Courier {
        store: wiring.messages(),
        sender: Arc::new(sender),
        clock: wiring.clock.clone(),
        queue: engine.queue.clone(),
        retry_base: engine.settings.message_retry_base,
        observer: None,
    })
}

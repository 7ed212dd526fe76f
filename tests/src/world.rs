//! A test world: one database, mock push services, one mock processor and one or more
//! `pushauth` processes configured for them.

use std::sync::Arc;
use std::time::Duration;

use pushauth::Platform;

use crate::phone::VirtualPhone;
use crate::processor::{MockProcessor, Processor};
use crate::push::PushMocks;
use crate::server::{Backend, Database, ServerProcess, ServerSpec};

/// One processor's end-to-end setup.
pub struct World {
    pub processor: Processor,
    pub backend: Backend,
    /// Decision window, seconds.
    pub window: u64,
    pub push: Arc<PushMocks>,
    pub mock: MockProcessor,
    pub db: Arc<Database>,
    /// Server instances (all on `db`).
    pub servers: Vec<ServerProcess>,
    pub http: reqwest::Client,
}

/// A cardholder linked to a fresh card, with enrolled phones.
pub struct Cardholder {
    pub id: String,
    pub card: String,
    pub phones: Vec<VirtualPhone>,
}

impl World {
    /// Starts `instances` servers for `processor` on `backend` with a decision window of
    /// `window` seconds; `env` adds `PUSHAUTH_…` settings.
    pub async fn start(
        processor: Processor,
        backend: Backend,
        window: u64,
        instances: usize,
        env: &[(&str, &str)],
    ) -> World {
        let push = Arc::new(PushMocks::start().await);
        let mock = processor.mock().await;
        let db = Database::create(backend).await;
        let spec = ServerSpec {
            toml: format!("{}\n{}", processor.toml(&mock.url(), window), push.toml()),
            db: db.clone(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let mut servers = Vec::new();
        for _ in 0..instances {
            servers.push(ServerProcess::start(spec.clone()).await);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        World {
            processor,
            backend,
            window,
            push,
            mock,
            db,
            servers,
            http,
        }
    }

    /// The first (or only) server.
    pub fn server(&self) -> &ServerProcess {
        &self.servers[0]
    }

    /// A cardholder with one phone per platform given, enrolled through `server`.
    pub async fn cardholder(&self, server: usize, platforms: &[Platform]) -> Cardholder {
        let s = &self.servers[server];
        let card = self.processor.new_card();
        let id = s.cardholder(self.processor.name(), &card).await;
        let mut phones = Vec::new();
        for p in platforms {
            let link = s.activation(&id).await;
            phones.push(VirtualPhone::enroll(&link, &s.url, *p, self.push.clone()).await);
        }
        Cardholder { id, card, phones }
    }

    /// Sends the processor's webhook for a new authentication on `card` to server
    /// `server`; returns the reference and the challenge id.
    pub async fn webhook(&self, server: usize, card: &str) -> (String, String) {
        let reference = crate::new_ref();
        let s = &self.servers[server];
        self.processor
            .send_webhook(
                &self.http,
                &s.url,
                &self.mock.url(),
                card,
                &reference,
                i64::try_from(self.window).unwrap(),
            )
            .await;
        let id = s.challenge_id(self.processor.name(), &reference).await;
        (reference, id)
    }
}

//! The guarantors one daemon serves, each behind its own [`Gate`]: one guarantor when
//! started with the single-guarantor flags (`--vault`, `--public-key`), every `[[issuer]]` of
//! `--issuers issuers.toml` otherwise. A number's guarantor is found from the number alone
//! (number spaces never overlap); a guarantor whose manifest fails its checks takes only its
//! own numbers out of service.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context as _, Result};
use serde::Serialize;

use super::gate::{Gate, Served, HIGH_WATER_FILE};
use super::options::Options;
use crate::common::hex::to_hex;
use crate::trust::issuers::{Issuer, Issuers};
use crate::trust::keys::TrustedKeys;
use crate::trust::manifest::{Limits, PublicKey};

/// Where a guarantor's high-water mark is kept under the state directory, by its id.
pub const ISSUERS_STATE_DIR: &str = "issuers";

/// Every guarantor served, in the order of `issuers.toml`.
pub(crate) struct Platform {
    gates: Vec<Arc<Gate>>,
    /// Started with `--issuers`: the pages and answers name the guarantor.
    pub(crate) named: bool,
}

impl Platform {
    /// Opens every guarantor's gate. With the single-guarantor flags, a manifest that does not
    /// pass refuses the start, as it always did; on a platform it takes that guarantor out of
    /// service (the reason logged) and the start goes on, unless no guarantor passes.
    pub(crate) fn open(options: &Options) -> Result<Platform> {
        let platform = Platform::unopened(options)?;
        if !platform.named {
            let gate = &platform.gates[0];
            gate.open()
                .map_err(|e| anyhow!("マニフェストを受け付けられないため起動しません: {e}"))?;
            return Ok(platform);
        }
        for gate in &platform.gates {
            open_issuer(gate);
        }
        if platform.gates.iter().all(|g| g.served().is_none()) {
            return Err(anyhow!(
                "{} のどの保証事業会社のマニフェストも受け付けられないため起動しません",
                options
                    .issuers
                    .as_deref()
                    .unwrap_or(Path::new(""))
                    .display()
            ));
        }
        Ok(platform)
    }

    /// Every guarantor's gate, its keys read, its manifest not yet: the single-guarantor
    /// flags' one, or those of `--issuers`. A key or an issuers.toml that cannot be read is an
    /// error: that is the platform's own configuration, not a guarantor's shipment.
    pub(crate) fn unopened(options: &Options) -> Result<Platform> {
        let limits = Limits {
            min_iterations: options.min_kdf_iterations,
            ..Limits::default()
        };
        let Some(file) = &options.issuers else {
            let trusted = TrustedKeys::load(&options.paths.keys, &options.public_keys)?;
            let issuer = Issuer::whole_space(options.paths.vault.clone(), Vec::new());
            let gate = Gate::new(issuer, trusted, limits, options.state_dir.clone());
            return Ok(Platform {
                gates: vec![Arc::new(gate)],
                named: false,
            });
        };
        let issuers = Issuers::load(file).map_err(|d| match d.into_result(()) {
            Err(errors) => anyhow::Error::from(errors),
            Ok(()) => anyhow!("{} を読めません", file.display()),
        })?;
        let mut gates = Vec::new();
        for issuer in issuers.0 {
            let trusted = TrustedKeys::load(Path::new(""), &issuer.public_keys)
                .with_context(|| format!("保証事業会社 {} の公開鍵を読めません", issuer.id))?;
            let state = options.state_dir.join(ISSUERS_STATE_DIR).join(&issuer.id);
            gates.push(Arc::new(Gate::new(issuer, trusted, limits, state)));
        }
        Ok(Platform { gates, named: true })
    }

    /// Every guarantor's gate.
    pub(crate) fn gates(&self) -> &[Arc<Gate>] {
        &self.gates
    }

    /// The gate of the guarantor whose number space holds `number` (canonical).
    pub(crate) fn gate_of(&self, number: &str) -> Option<&Arc<Gate>> {
        self.gates.iter().find(|g| g.issuer.holds(number))
    }

    /// A manifest in service, to check a key against when the number lies in no guarantor's
    /// space: the answer then costs what a wrong key costs.
    pub(crate) fn any_served(&self) -> Option<Arc<Served>> {
        self.gates.iter().find_map(|g| g.served())
    }

    /// What the platform's front page and receipt page show: each guarantor, its keys and
    /// whether its numbers are answered at `now`, and the key that signs receipts.
    pub(crate) fn view(&self, service: Option<&PublicKey>, now: u64) -> PlatformView {
        let issuers = self
            .gates
            .iter()
            .map(|gate| {
                let issuer = &gate.issuer;
                IssuerView {
                    id: issuer.id.clone(),
                    name: issuer.name.clone(),
                    prefixes: issuer.number_prefixes.clone(),
                    keys: gate.trusted.as_slice().iter().map(KeyView::of).collect(),
                    keys_page: issuer.keys_page.clone(),
                    contact: issuer.contact.clone(),
                    in_service: gate.served().is_some_and(|s| !s.expired(now)),
                }
            })
            .collect();
        let signing_keys = self
            .gates
            .iter()
            .flat_map(|g| g.trusted.as_slice())
            .map(|k| format!("{}:{}", k.id, to_hex(&k.bytes)))
            .collect::<Vec<_>>()
            .join(" ");
        PlatformView {
            issuers,
            signing_keys,
            service_key: service.map(KeyView::of),
        }
    }

    /// The one guarantor of a daemon started with the single-guarantor flags.
    pub(crate) fn single(&self) -> Option<&Arc<Gate>> {
        match (self.named, self.gates.as_slice()) {
            (false, [gate]) => Some(gate),
            _ => None,
        }
    }
}

/// Opens one guarantor's gate: its manifest admitted, or refused (out of service, logged).
fn open_issuer(gate: &Gate) {
    if let Err(why) = gate.open() {
        tracing::error!(
            issuer = %gate.issuer.id,
            high_water = %gate.state_dir.join(HIGH_WATER_FILE).display(),
            "保証事業会社 {}（{}）のマニフェストを受け付けられません。この会社の番号の確認は止めます: {why}",
            gate.issuer.name,
            gate.issuer.id,
        );
    }
}

/// A public key as the pages show it.
#[derive(Serialize)]
pub(crate) struct KeyView {
    id: String,
    hex: String,
}

impl KeyView {
    fn of(key: &PublicKey) -> KeyView {
        KeyView {
            id: key.id.clone(),
            hex: to_hex(&key.bytes),
        }
    }
}

/// One guarantor on the platform's pages.
#[derive(Serialize)]
pub(crate) struct IssuerView {
    id: String,
    name: String,
    prefixes: Vec<String>,
    keys: Vec<KeyView>,
    keys_page: String,
    contact: String,
    in_service: bool,
}

/// The platform's front page and receipt page.
#[derive(Serialize)]
pub(crate) struct PlatformView {
    pub(crate) issuers: Vec<IssuerView>,
    /// Every guarantor's trusted keys, as the receipt checker reads them (`id:hex id:hex`).
    pub(crate) signing_keys: String,
    pub(crate) service_key: Option<KeyView>,
}

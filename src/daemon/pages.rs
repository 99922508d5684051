//! The orderer's pages, rendered with the site's theme (its `base.html`, so the daemon looks
//! like the site) from the built-in templates `verify*.html`, which a site may override.

use std::path::Path;

use anyhow::{anyhow, Result};
use chrono::NaiveDate;
use serde::Serialize;
use tera::Context;

use super::platform::PlatformView;
use super::receipts::Made;
use crate::common::certificate::Status;
use crate::common::config::Config;
use crate::common::diagnostics::Diagnostics;
use crate::common::era;
use crate::site::render::Renderer;
use crate::trust::issuers::Issuer;
use crate::trust::verify::Verified;

/// Style sheets the pages load, served by the daemon itself (it may run without the site).
pub(crate) const STYLE_CSS: &[u8] = include_bytes!("../../assets/css/style.css");
pub(crate) const VERIFY_CSS: &[u8] = include_bytes!("../../assets/css/verify.css");
/// The receipt page's checker (a platform serves its own receipt page).
pub(crate) const RECEIPT_JS: &[u8] = include_bytes!("../../assets/js/receipt.js");

/// Settings for a host with no hosho.toml (a production host holds the vault and the public
/// key alone).
const FALLBACK_CONFIG: &str = r#"
title = "電子証書の確認"
base_url = "http://localhost/"
[guarantor]
name = ""
address = ""
[adopters]
categories = ["発注者"]
"#;

#[derive(Serialize)]
struct NavItem {
    title: &'static str,
    path: &'static str,
    url: String,
}

#[derive(Serialize)]
struct ChangeView {
    iso: NaiveDate,
    date: String,
    items: Vec<String>,
}

pub(crate) struct Pages {
    renderer: Renderer,
    config: Config,
    /// Pages of a platform (`--issuers`): whom to ask is the guarantor that issued the
    /// certificate, never the platform's operator.
    platform: bool,
}

/// The message pages (refusals other than "not found", limits, outages). An outage names the
/// guarantor on a platform (`Some`); a daemon of one guarantor speaks as 「当社」 (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message<'a> {
    /// 429, with the seconds to wait (`Retry-After`).
    RateLimited(u64),
    /// 503: the pool is full.
    Busy,
    /// 503: the guarantor's manifest expired.
    Expired(Option<&'a Issuer>),
    /// 503: the guarantor has no manifest in service (its start failed closed).
    OutOfService(Option<&'a Issuer>),
    /// 503: the vault does not match the manifest.
    Damaged(Option<&'a Issuer>),
    /// 400 / 413 / 415 / 408 on the form.
    BadRequest,
    /// 404 for an unknown or expired PDF link.
    LinkExpired,
    /// 405
    MethodNotAllowed,
    /// 404 when no site is previewed.
    NotFound,
    /// 403 for a form post from another site.
    CrossSite,
}

impl Pages {
    /// The theme from `root` (built-in templates, overridden by the site's own), and its
    /// settings, or neutral ones when there is no hosho.toml.
    pub(crate) fn load(root: &Path) -> Result<Pages> {
        let input_error = |d: Diagnostics| match d.into_result(()) {
            Err(errors) => anyhow::Error::from(errors),
            Ok(()) => anyhow!("テンプレートを読み込めません"),
        };
        let config = if root.join(crate::common::config::CONFIG_FILE).is_file() {
            Config::load(root).map_err(|d| input_error(d.into()))?
        } else {
            Config::parse(FALLBACK_CONFIG).map_err(|d| input_error(d.into()))?
        };
        let mut d = Diagnostics::default();
        let loaded = Renderer::load(root, None, &mut d);
        let Some(renderer) = loaded.renderer else {
            return Err(input_error(d));
        };
        Ok(Pages {
            renderer,
            config,
            platform: false,
        })
    }

    /// These pages, as a platform's (`--issuers`).
    pub(crate) fn on_platform(self, platform: bool) -> Pages {
        Pages { platform, ..self }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Whom to ask when a certificate cannot be shown: the contractor first, then the
    /// guarantor's office by telephone.
    fn ask_next(&self) -> String {
        if self.platform {
            // The same words for every number: which guarantor it would be is not said.
            return "それでも確認できないときは、まず、お知らせを提出した受注者に、番号とキーに誤りがないかご確認ください。そのうえで、電子証書を発行した保証事業会社にお問い合わせください（各社の問い合わせ先は、この確認サービスのトップページにあります）。".to_owned();
        }
        let g = &self.config.guarantor;
        let office = match (g.name.as_str(), g.branch.as_deref()) {
            ("", _) => "保証会社".to_owned(),
            (name, Some(branch)) if !branch.is_empty() => format!("{name}　{branch}"),
            (name, _) => name.to_owned(),
        };
        let phone = g
            .tel
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| format!("（電話　{t}）"))
            .unwrap_or_default();
        format!("それでも確認できないときは、まず、お知らせを提出した受注者に、番号とキーに誤りがないかご確認ください。そのうえで、{office}{phone}にお問い合わせください。")
    }

    fn context(&self) -> Context {
        let mut c = Context::new();
        let base = &self.config.base_path;
        let nav = vec![NavItem {
            title: "ホーム",
            path: "/",
            url: base.clone(),
        }];
        c.insert("config", &self.config);
        c.insert("base_path", base);
        c.insert("nav", &nav);
        c.insert("current_path", "/verify/");
        c.insert("verify_link", "/verify/");
        c.insert("verifying", &true);
        c
    }

    fn render(&self, template: &str, c: &Context) -> String {
        self.renderer
            .render(template, c, template)
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "ページを描画できません");
                "<!DOCTYPE html><html lang=\"ja\"><meta charset=\"utf-8\"><title>エラー</title><p>ページを表示できません。</p></html>".to_owned()
            })
    }

    /// The 保証確認 form; with `refused`, the one generic refusal above it; with `number`,
    /// that 保証契約番号 already filled in.
    pub(crate) fn form(&self, refused: bool, number: Option<&str>) -> String {
        let mut c = self.context();
        c.insert("error", &refused);
        c.insert("number", &number);
        c.insert("ask_next", &self.ask_next());
        self.render("verify.html", &c)
    }

    /// The certificate view; on a platform, with the guarantor whose key checked it (and
    /// that key's id).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn certificate(
        &self,
        v: &Verified,
        issuer: Option<(&Issuer, &str)>,
        receipt: Option<&Made>,
        pdf_url: &str,
        pdf_minutes: u64,
        today: NaiveDate,
        checked_at: &str,
    ) -> String {
        let mut c = self.context();
        let period_ended = v.record.period_ended(today) && v.status != Status::Cancelled;
        let (status_class, status_label) = match (v.status, period_ended) {
            (Status::Cancelled, _) => ("cancelled", Status::Cancelled.label()),
            (_, true) => ("ended", "保証期間満了"),
            (Status::Changed, false) => ("changed", Status::Changed.label()),
            (Status::Valid, false) => ("valid", Status::Valid.label()),
        };
        let changes: Vec<ChangeView> = v
            .record
            .changes
            .iter()
            .zip(v.record.change_lines())
            .map(|(ch, (date, items))| ChangeView {
                iso: ch.date,
                date,
                items,
            })
            .collect();
        c.insert("c", &v.record);
        c.insert("changes", &changes);
        c.insert("changed", &(v.status == Status::Changed));
        c.insert("cancelled", &(v.status == Status::Cancelled));
        c.insert("period_ended", &period_ended);
        c.insert("status_class", status_class);
        c.insert("status_label", status_label);
        c.insert("pdf", pdf_url);
        c.insert("pdf_minutes", &pdf_minutes);
        c.insert("seq", &v.seq);
        c.insert("manifest_sha256", &v.manifest_sha256);
        c.insert("manifest_issued", &japan_date_text(v.issued_at));
        c.insert("service_url", &self.config.verify_url());
        if let Some((issuer, key_id)) = issuer {
            c.insert(
                "issuer",
                &serde_json::json!({"id": issuer.id, "name": issuer.name, "key_id": key_id}),
            );
        }
        insert_receipt(&mut c, receipt);
        c.insert("checked_at", checked_at);
        self.render("verify_certificate.html", &c)
    }

    /// A platform's front page (`index`) or receipt page.
    pub(crate) fn platform(&self, view: &PlatformView, receipt: bool) -> String {
        let mut c = self.context();
        c.insert("issuers", &view.issuers);
        c.insert("service_key", &view.service_key);
        c.insert("signing_keys", &view.signing_keys);
        c.insert("verifying", &false);
        match receipt {
            true => self.render("platform_receipt.html", &c),
            false => self.render("platform.html", &c),
        }
    }

    pub(crate) fn message(&self, message: Message<'_>) -> String {
        let (heading, paragraphs) = match outage_words(message) {
            Some(words) => words,
            None => {
                let (heading, paragraphs) = self.words(message);
                (heading.to_owned(), paragraphs)
            }
        };
        let mut c = self.context();
        c.insert("heading", &heading);
        c.insert("paragraphs", &paragraphs);
        self.render("verify_message.html", &c)
    }

    /// The heading and paragraphs of every message but an outage.
    fn words(&self, message: Message<'_>) -> (&'static str, Vec<String>) {
        match message {
            Message::RateLimited(seconds) => (
                "しばらく時間をおいてからお試しください",
                vec![
                    "短い時間に多くの確認が行われたか、入力の誤りが続いたため、不正な利用を防ぐために確認を一時的に止めています。".to_owned(),
                    format!("{}に、もう一度お試しください。入力の誤りがないよう、{NOTICE}と見比べてご入力ください。", wait_text(seconds)),
                    self.ask_next(),
                ],
            ),
            Message::Busy => (
                "ただいま混み合っています",
                vec!["確認の処理が混み合っています。恐れ入りますが、少し時間をおいてからもう一度お試しください。".to_owned()],
            ),
            Message::BadRequest => (
                "入力を受け付けられませんでした",
                vec!["送信された内容を読み取れませんでした。確認の画面からもう一度入力してください。".to_owned()],
            ),
            Message::LinkExpired => (
                "このリンクは使えません",
                vec!["証書のPDFへのリンクは、確認してから一定の時間だけ使えます。お手数ですが、もう一度保証契約番号と認証キーで確認してください。".to_owned()],
            ),
            Message::NotFound => (
                "ページが見つかりません",
                vec!["お探しのページはありません。電子証書の確認は下のリンクからどうぞ。".to_owned()],
            ),
            Message::CrossSite => (
                "この入力は受け付けられません",
                vec!["ほかのサイトのページから送られた入力は受け付けていません。お手数ですが、この確認の画面から保証契約番号と認証キーを入力してください。".to_owned()],
            ),
            Message::MethodNotAllowed => (
                "この方法ではご利用になれません",
                vec!["確認の画面から入力してください。".to_owned()],
            ),
            Message::Expired(..) | Message::OutOfService(..) | Message::Damaged(..) => {
                ("ただいま電子証書を確認できません", Vec::new())
            }
        }
    }
}

/// The heading and paragraphs of an outage: a guarantor named on a platform, 「当社」 else.
fn outage_words(message: Message<'_>) -> Option<(String, Vec<String>)> {
    Some(match message {
            Message::Expired(None) => (
                "ただいま電子証書を確認できません".to_owned(),
                vec![
                    "当社の署名付き記録の有効期限が過ぎているため、古い内容を表示しないよう確認を止めています。".to_owned(),
                    "記録が更新されるまでお待ちいただくか、当社にお問い合わせください。".to_owned(),
                ],
            ),
            Message::Expired(Some(i)) => outage(i, "署名付き記録の有効期限が過ぎているため、古い内容を表示しないよう"),
            Message::OutOfService(None) => (
                "ただいま電子証書を確認できません".to_owned(),
                vec!["当社の署名付き記録を確かめられないため、確認を止めています。お手数ですが、当社にお問い合わせください。".to_owned()],
            ),
            Message::OutOfService(Some(i)) => outage(i, "署名付き記録を確かめられないため、誤った内容を表示しないよう"),
            Message::Damaged(None) => (
                "ただいま電子証書を表示できません".to_owned(),
                vec!["この電子証書のファイルが当社の署名付き記録と一致しないため、表示を止めています。お手数ですが、当社にお問い合わせください。".to_owned()],
            ),
            Message::Damaged(Some(i)) => (
                "ただいま電子証書を表示できません".to_owned(),
                vec![
                    format!("この電子証書のファイルが{}の署名付き記録と一致しないため、表示を止めています。", i.name),
                    format!("お手数ですが、{}にお問い合わせください（問い合わせ先: {}）。", i.name, i.contact),
                ],
            ),
        _ => return None,
    })
}

/// A guarantor's numbers out of service on a platform: `why` it stopped, that the other
/// guarantors' certificates can still be checked, and whom to ask.
fn outage(issuer: &Issuer, why: &str) -> (String, Vec<String>) {
    let name = &issuer.name;
    (
        format!("ただいま{name}の電子証書を確認できません"),
        vec![
            format!("{name}の{why}、{name}の電子証書の確認を止めています。ほかの保証事業会社の電子証書は、これまでどおり確認できます。"),
            format!("記録が更新されるまでお待ちいただくか、{name}にお問い合わせください（問い合わせ先: {}）。", issuer.contact),
        ],
    )
}

/// The receipt file offered for saving (a `data:` link) and its 照合番号, when one was made.
fn insert_receipt(c: &mut Context, receipt: Option<&Made>) {
    if let Some(made) = receipt {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(&made.bytes);
        c.insert(
            "receipt_href",
            &format!("data:application/json;base64,{data}"),
        );
        c.insert("receipt_file_name", &made.file_name());
        c.insert("receipt_fingerprint", &made.fingerprint());
    }
}

/// The notice's one name in running text (the document's title, quoted).
pub(crate) const NOTICE: &str = "「電子証書閲覧用『認証キー』等のお知らせ」";

/// How long to wait, as `Retry-After` says it: 「30秒後」, 「約2分後」, 「約1時間12分後」.
fn wait_text(seconds: u64) -> String {
    let seconds = seconds.max(1);
    if seconds < 60 {
        return format!("{seconds}秒後");
    }
    let minutes = seconds.div_ceil(60);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("約{m}分後"),
        (h, 0) => format!("約{h}時間後"),
        (h, m) => format!("約{h}時間{m}分後"),
    }
}

/// The day in Japan of Unix time `seconds`, in era form (`令和8年11月30日`).
fn japan_date_text(seconds: u64) -> String {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| era::full_date(era::in_japan(t).date()))
        .unwrap_or_default()
}

/// Today in Japan, for 保証期間満了.
pub(crate) fn today_in_japan() -> NaiveDate {
    era::today_in_japan()
}

/// Now in Japan as `令和7年11月23日　14時05分`.
pub(crate) fn now_in_japan_text() -> String {
    use chrono::Timelike;
    let now = era::in_japan(chrono::Utc::now());
    format!(
        "{}　{}時{:02}分",
        era::full_date(now.date()),
        now.hour(),
        now.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::wait_text;

    #[test]
    fn the_wait_reads_as_retry_after_says_it() {
        let cases = [
            (0, "1秒後"),
            (1, "1秒後"),
            (59, "59秒後"),
            (60, "約1分後"),
            (61, "約2分後"),
            (3_600, "約1時間後"),
            (4_320, "約1時間12分後"),
            (43_200, "約12時間後"),
        ];
        for (seconds, text) in cases {
            assert_eq!(wait_text(seconds), text, "{seconds} s");
        }
    }
}

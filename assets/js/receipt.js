// 確認記録の検証（/receipt/）: the chosen receipt file is checked in the browser alone, with
// WebCrypto (Ed25519, SHA-256), against the public keys this page publishes. Nothing is
// sent anywhere. The checks are those of docs/receipt.md, in the same order; what the file
// holds is shown as text only, never as markup.
(function () {
  "use strict";
  var form = document.getElementById("receipt-check");
  var result = document.getElementById("receipt-result");
  if (!form || !result) return;
  if (!(window.crypto && crypto.subtle)) {
    say("このブラウザでは検証できません（Web Crypto API がありません）。コマンドで検証してください。", false);
    return;
  }
  form.hidden = false;
  var enc = new TextEncoder();

  function fromHex(text) {
    if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) throw new Invalid("16進数でない値があります");
    var out = new Uint8Array(text.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
    return out;
  }
  function toHex(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }
  function concat() {
    var parts = Array.prototype.slice.call(arguments), length = 0, at = 0;
    parts.forEach(function (p) { length += p.length; });
    var out = new Uint8Array(length);
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  function sha256(bytes) {
    return crypto.subtle.digest("SHA-256", bytes).then(function (d) { return new Uint8Array(d); });
  }
  function Invalid(message) { this.message = message; }
  function verifyEd25519(publicHex, signatureHex, message) {
    return crypto.subtle.importKey("raw", fromHex(publicHex), { name: "Ed25519" }, false, ["verify"])
      .then(function (key) { return crypto.subtle.verify({ name: "Ed25519" }, key, fromHex(signatureHex), message); });
  }

  function treeHeadBytes(h) {
    return enc.encode("hosho tree head v3\nkey_id " + h.key_id + "\nseq " + h.seq +
      "\nissued_at " + h.issued_at + "\nexpires_at " + h.expires_at + "\nkdf " +
      h.kdf.algorithm + " " + h.kdf.iterations + " " + h.kdf.length + "\nsize " + h.size +
      "\nroot " + h.root + "\n");
  }
  function leafBytes(l) {
    return enc.encode("hosho leaf v3\n" + [l.number, l.kind, l.status, l.record_sha256,
      l.pdf_sha256, l.secret_sha256].map(function (f) { return f + "\n"; }).join(""));
  }
  // RFC 9162, 2.1.3.2: the root the proof leads to from the leaf, or null.
  function rootOf(leafHash, index, size, path) {
    if (index >= size) return Promise.resolve(null);
    var fn = index, sn = size - 1, r = Promise.resolve(leafHash);
    for (var i = 0; i < path.length; i++) {
      if (sn === 0) return Promise.resolve(null);
      var p = fromHex(path[i]);
      if (fn % 2 === 1 || fn === sn) {
        r = r.then(hashLeft(p));
        if (fn % 2 === 0) { while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); } }
      } else {
        r = r.then(hashRight(p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    return r.then(function (x) { return sn === 0 ? x : null; });
  }
  function hashLeft(p) { return function (x) { return sha256(concat(new Uint8Array([1]), p, x)); }; }
  function hashRight(p) { return function (x) { return sha256(concat(new Uint8Array([1]), x, p)); }; }

  // The guarantors' keys this page trusts, "id:hex" separated by spaces (a platform lists
  // every guarantor's).
  function trustedSigningKey(id) {
    var pairs = (form.dataset.signingKeys || "").split(" ");
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i].split(":");
      if (pair.length === 2 && pair[0] === id) return pair[1];
    }
    return null;
  }

  function check(text) {
    var r, record;
    try { r = JSON.parse(text); } catch (e) { return Promise.reject(new Invalid("確認記録のファイルとして読めません（JSON ではありません）")); }
    if (!r || r.format !== "hosho-receipt-1") return Promise.reject(new Invalid("確認記録のファイルとして読めません（format が違います）"));
    var h = r.tree_head, leaf = r.leaf, head = treeHeadBytes(h), state = {};
    return Promise.resolve().then(function () {
      var signingKey = trustedSigningKey(h.key_id);
      if (!signingKey) throw new Invalid("保証会社の署名の鍵（鍵 ID " + h.key_id + "）は、このサイトの公開鍵ではありません");
      return verifyEd25519(signingKey, r.tree_head_signature, head);
    }).then(function (ok) {
      if (!ok) throw new Invalid("保証会社の署名が一致しません（tree_head の内容が署名されたものと違います: マニフェストの番号・日時・件数・ルートのいずれか）");
      return sha256(enc.encode(r.certificate));
    }).then(function (certificateHash) {
      state.certificateHash = toHex(certificateHash);
      if (state.certificateHash !== leaf.record_sha256) throw new Invalid("証書の内容（certificate）が、保証会社の署名した記録と一致しません（金額・日付・状態などが改変されています）");
      record = JSON.parse(r.certificate);
      [["number", "保証契約番号（number）"], ["kind", "区分（kind）"], ["status", "状態（status）"]].forEach(function (f) {
        if (record[f[0]] !== leaf[f[0]]) throw new Invalid("証書の記録の " + f[1] + " が、署名された項目（leaf）と一致しません");
      });
      return sha256(concat(new Uint8Array([0]), leafBytes(leaf)));
    }).then(function (leafHash) {
      state.leafHash = toHex(leafHash);
      return rootOf(leafHash, r.proof.index, h.size, r.proof.path);
    }).then(function (root) {
      if (!root || toHex(root) !== h.root) throw new Invalid("包含証明（proof）が、署名されたマニフェストのルートにつながりません（proof か leaf が改変されています）");
      if (record.guarantor.name !== r.guarantor) throw new Invalid("保証会社名（guarantor）が証書の記録と一致しません");
      if (r.checked_at < h.issued_at || r.checked_at > h.expires_at) throw new Invalid("確認日時（checked_at）が、マニフェストの有効期間の外にあります");
      if (r.service_key_id !== form.dataset.serviceKeyId) throw new Invalid("確認サービスの署名の鍵（鍵 ID " + r.service_key_id + "）は、このサイトの公開鍵ではありません");
      ["checked_at_jst", "service_url", "guarantor"].forEach(function (f) {
        if (/[\r\n]/.test(r[f])) throw new Invalid("確認記録のファイルとして読めません（" + f + " に改行があります）");
      });
      return sha256(head);
    }).then(function (headHash) {
      var message = "hosho receipt v1\nformat " + r.format + "\nchecked_at " + r.checked_at +
        "\nchecked_at_jst " + r.checked_at_jst + "\nservice_url " + r.service_url +
        "\nguarantor " + r.guarantor + "\ncertificate_sha256 " + state.certificateHash +
        "\nleaf_hash " + state.leafHash + "\nproof " + r.proof.index + " " + r.proof.path.join(",") +
        "\ntree_head_sha256 " + toHex(headHash) + "\ntree_head_signature " + r.tree_head_signature +
        "\nservice_key_id " + r.service_key_id + "\n";
      return verifyEd25519(form.dataset.serviceKey, r.service_signature, enc.encode(message));
    }).then(function (ok) {
      if (!ok) throw new Invalid("確認サービスの署名が一致しません（確認日時・確認した場所・保証会社名などが改変されています）");
      return { receipt: r, record: record };
    });
  }

  var STATUS = { valid: "有効", changed: "有効（変更あり）", cancelled: "解除（保証の効力はありません）" };
  function wareki(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso || "");
    if (!m) return iso || "";
    var y = +m[1], md = m[2] + m[3], era, year;
    if (y > 2019 || (y === 2019 && md >= "0501")) { era = "令和"; year = y - 2018; }
    else if (y > 1989 || (y === 1989 && md >= "0108")) { era = "平成"; year = y - 1988; }
    else { return y + "年" + (+m[2]) + "月" + (+m[3]) + "日"; }
    return era + (year === 1 ? "元" : year) + "年" + (+m[2]) + "月" + (+m[3]) + "日";
  }
  function yen(n) { return Number(n).toLocaleString("ja-JP") + "円"; }

  function say(text, ok) {
    result.textContent = "";
    var p = document.createElement("p");
    p.className = ok ? "receipt-valid" : "receipt-invalid";
    p.textContent = text;
    result.appendChild(p);
  }
  function show(checked) {
    var r = checked.receipt, c = checked.record, t = c.current;
    say("有効な確認記録です。", true);
    var table = document.createElement("table");
    var caption = document.createElement("caption");
    caption.textContent = "確認記録の内容（確認した時点）";
    table.appendChild(caption);
    var tbody = document.createElement("tbody");
    [["保証契約番号", c.number], ["区分", c.kind], ["状態（確認時）", STATUS[c.status] || c.status],
     ["工事名", t.project], ["保証金額", yen(t.amount)],
     ["保証期間", wareki(t.period.from) + "から" + wareki(t.period.to) + "まで"],
     ["被保証者", c.beneficiary], ["保証契約者", c.contractor.name],
     ["保証会社", r.guarantor], ["確認日時", r.checked_at_jst.replace("T", " ").slice(0, 19) + "（日本時間）"],
     ["確認した場所", r.service_url], ["マニフェストの通し番号", String(r.tree_head.seq)]
    ].forEach(function (row) {
      var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.scope = "row"; th.textContent = row[0]; td.textContent = row[1];
      tr.appendChild(th); tr.appendChild(td); tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    result.appendChild(table);
    var note = document.createElement("p");
    note.textContent = "この記録は、確認した日時にこの内容の電子証書を当社が署名し、確認サービスが表示したことを示します。その後の変更・解除は現れません。現在の状態は「電子証書の確認」で確かめてください。";
    result.appendChild(note);
  }

  document.getElementById("receipt-file").addEventListener("change", function (event) {
    var file = event.target.files && event.target.files[0];
    if (!file) return;
    if (file.size > 256 * 1024) { say("この確認記録は有効ではありません: ファイルが大きすぎます。", false); return; }
    say("検証しています…", true);
    file.text().then(check).then(show, function (e) {
      var reason = e instanceof Invalid ? e.message : "確認記録のファイルとして読めません（" + (e && e.message || e) + "）";
      say("この確認記録は有効ではありません: " + reason, false);
    });
  });
})();

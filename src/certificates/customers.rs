//! The contractors on 保証料一括納付制度 (`data/customers.yaml`, private input, format in
//! `docs/certificates.md`): each declared once with a 顧客コード that certificates name in
//! `customer:`. Each of them receives a 保証料計算書 per month.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::certificate::Party;
use crate::common::diagnostics::{Diagnostic, Diagnostics};
use crate::common::root::CUSTOMERS_FILE;
use crate::common::yaml::{field, read_list, Field};

const CODE: Field = field("code", "顧客コード");
const NAME: Field = field("name", "名称");
const ADDRESS: Field = field("address", "所在地");
const FIELDS: [Field; 3] = [CODE, NAME, ADDRESS];

/// 保証料一括納付制度をご利用のお客様: a contractor billed once a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// 顧客コード: letters, digits and `-`, used in file names.
    pub code: String,
    /// 名称 and 所在地, as the statement is addressed.
    pub party: Party,
}

/// Every customer by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customers(pub BTreeMap<String, Customer>);

impl Customers {
    pub fn get(&self, code: &str) -> Option<&Customer> {
        self.0.get(code)
    }
}

/// Whether `code` can name a customer (and a directory of statements).
fn valid_code(code: &str) -> bool {
    (1..=32).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !code.starts_with('-')
}

/// The customers file, if there is one; problems go to `diagnostics`.
pub fn load(root: &Path, diagnostics: &mut Diagnostics) -> Customers {
    let path = root.join(CUSTOMERS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Customers::default(),
        Err(e) => {
            diagnostics.push(Diagnostic::file(CUSTOMERS_FILE, format!("読めません: {e}")));
            return Customers::default();
        }
    };
    parse(Path::new(CUSTOMERS_FILE), &text, diagnostics)
}

/// The customers of `text` (the file `rel`).
pub fn parse(rel: &Path, text: &str, diagnostics: &mut Diagnostics) -> Customers {
    let mut customers = BTreeMap::new();
    read_list(
        rel,
        text,
        "一括納付のお客様",
        diagnostics,
        |r, item, path, _| {
            let map = r.mapping(item, path, "お客様", &FIELDS)?;
            let code = r.string(map, path, CODE, true);
            let name = r.string(map, path, NAME, true);
            let address = r.string(map, path, ADDRESS, true);
            let code = code?;
            if !valid_code(&code) {
                r.error(
                    &path.key(CODE.key),
                    format!(
                        "顧客コード「{code}」は半角英数字とハイフン（32文字まで）で書いてください"
                    ),
                );
                return None;
            }
            if customers.contains_key(&code) {
                r.error(
                    &path.key(CODE.key),
                    format!("顧客コード「{code}」が二度書かれています"),
                );
                return None;
            }
            let customer = Customer {
                code: code.clone(),
                party: Party {
                    name: name?,
                    address: address?,
                },
            };
            customers.insert(code, customer);
            Some(())
        },
    );
    Customers(customers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_are_read_and_checked_at_their_line() {
        let text = "- {code: K-001, name: 株式会社見本建設, address: 大阪府}\n- {code: K-001, name: 別, address: 大阪府}\n- {code: \"../x\", name: 別, address: 大阪府}\n";
        let mut d = Diagnostics::default();
        let customers = parse(Path::new("data/customers.yaml"), text, &mut d);
        assert_eq!(customers.0.len(), 1);
        assert_eq!(
            customers.get("K-001").map(|c| c.party.name.as_str()),
            Some("株式会社見本建設")
        );
        let lines: Vec<String> = d.sorted().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "data/customers.yaml:2:10: 顧客コード「K-001」が二度書かれています",
                "data/customers.yaml:3:10: 顧客コード「../x」は半角英数字とハイフン（32文字まで）で書いてください",
            ]
        );
    }
}

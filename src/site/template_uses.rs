//! What each template draws on, read from tera's own parse (its AST), not from its text: the
//! functions it calls (in any expression, filter argument, macro body or condition) and the
//! templates it extends, includes and imports. The live preview renders a page again when
//! the value of a data function that its template's files call has changed
//! ([`super::render::Renderer::fingerprint`]), so a call missed here is a stale page.

use std::collections::{BTreeMap, BTreeSet};

use tera::ast::{Expr, ExprVal, Node};

/// The functions a template calls and the templates it names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uses {
    pub functions: BTreeSet<String>,
    pub templates: BTreeSet<String>,
}

/// What `template` itself uses (its own text and its macros; not what it names).
pub fn of(template: &tera::Template) -> Uses {
    let mut uses = Uses::default();
    nodes(&template.ast, &mut uses);
    for definition in template.macros.values() {
        nodes(&definition.body, &mut uses);
        definition
            .args
            .values()
            .flatten()
            .for_each(|e| expr(e, &mut uses));
    }
    uses.templates.extend(template.parents.iter().cloned());
    let imported = template
        .imported_macro_files
        .iter()
        .map(|(file, _)| file.clone());
    uses.templates.extend(imported);
    uses
}

/// For every template of `tera`, the functions called by it or by any template it names,
/// and theirs in turn.
pub fn functions_by_template(tera: &tera::Tera) -> BTreeMap<String, BTreeSet<String>> {
    let own: BTreeMap<&str, Uses> = tera
        .get_template_names()
        .filter_map(|name| Some((name, of(tera.get_template(name).ok()?))))
        .collect();
    own.keys()
        .map(|start| {
            let (mut seen, mut todo) = (BTreeSet::from([*start]), vec![*start]);
            let mut functions = BTreeSet::new();
            while let Some(name) = todo.pop() {
                let Some(uses) = own.get(name) else { continue };
                functions.extend(uses.functions.iter().cloned());
                for next in &uses.templates {
                    if seen.insert(next.as_str()) {
                        todo.push(next.as_str());
                    }
                }
            }
            ((*start).to_owned(), functions)
        })
        .collect()
}

fn nodes(list: &[Node], uses: &mut Uses) {
    list.iter().for_each(|n| node(n, uses));
}

fn node(n: &Node, uses: &mut Uses) {
    match n {
        Node::VariableBlock(_, e) => expr(e, uses),
        Node::MacroDefinition(_, definition, _) => {
            nodes(&definition.body, uses);
            definition
                .args
                .values()
                .flatten()
                .for_each(|e| expr(e, uses));
        }
        Node::Extends(_, name) | Node::ImportMacro(_, name, _) => {
            uses.templates.insert(name.clone());
        }
        Node::Include(_, names, _) => uses.templates.extend(names.iter().cloned()),
        Node::Set(_, set) => expr(&set.value, uses),
        Node::FilterSection(_, section, _) => {
            section.filter.args.values().for_each(|e| expr(e, uses));
            nodes(&section.body, uses);
        }
        Node::Block(_, block, _) => nodes(&block.body, uses),
        Node::Forloop(_, each, _) => {
            expr(&each.container, uses);
            nodes(&each.body, uses);
            nodes(each.empty_body.as_deref().unwrap_or_default(), uses);
        }
        Node::If(branches, _) => {
            for (_, condition, body) in &branches.conditions {
                expr(condition, uses);
                nodes(body, uses);
            }
            if let Some((_, body)) = &branches.otherwise {
                nodes(body, uses);
            }
        }
        Node::Super
        | Node::Text(_)
        | Node::Raw(..)
        | Node::Break(_)
        | Node::Continue(_)
        | Node::Comment(..) => {}
    }
}

fn expr(e: &Expr, uses: &mut Uses) {
    value(&e.val, uses);
    for filter in &e.filters {
        filter.args.values().for_each(|a| expr(a, uses));
    }
}

fn value(v: &ExprVal, uses: &mut Uses) {
    match v {
        ExprVal::FunctionCall(call) => {
            uses.functions.insert(call.name.clone());
            call.args.values().for_each(|a| expr(a, uses));
        }
        ExprVal::MacroCall(call) => call.args.values().for_each(|a| expr(a, uses)),
        ExprVal::Math(m) => {
            expr(&m.lhs, uses);
            expr(&m.rhs, uses);
        }
        ExprVal::Logic(l) => {
            expr(&l.lhs, uses);
            expr(&l.rhs, uses);
        }
        ExprVal::In(i) => {
            expr(&i.lhs, uses);
            expr(&i.rhs, uses);
        }
        ExprVal::Test(t) => t.args.iter().for_each(|a| expr(a, uses)),
        ExprVal::Array(items) => items.iter().for_each(|a| expr(a, uses)),
        ExprVal::StringConcat(concat) => concat.values.iter().for_each(|v| value(v, uses)),
        ExprVal::String(_)
        | ExprVal::Int(_)
        | ExprVal::Float(_)
        | ExprVal::Bool(_)
        | ExprVal::Ident(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tera(templates: &[(&str, &str)]) -> tera::Tera {
        let mut tera = tera::Tera::default();
        for name in ["qa", "adopter_tables", "updates", "timeline"] {
            tera.register_function(
                name,
                |_: &std::collections::HashMap<String, tera::Value>| Ok(tera::Value::Null),
            );
        }
        tera.add_raw_templates(templates.iter().copied())
            .expect("valid tera");
        tera
    }

    fn called(tera: &tera::Tera, template: &str) -> Vec<String> {
        functions_by_template(tera)[template]
            .iter()
            .cloned()
            .collect()
    }

    #[test]
    fn calls_are_found_however_they_are_written() {
        let t = tera(&[
            // Whitespace before the parenthesis, which tera accepts and a text search misses.
            ("spaced.html", "{% set x = qa () %}{{ x | length }}"),
            // In a condition, a loop, a filter's argument.
            ("nested.html", "{% if updates() %}{% for t in adopter_tables() %}{{ t | default(value=timeline()) }}{% endfor %}{% endif %}"),
            // Only in a comment or in text: no call.
            ("mention.html", "{# qa() #}qa() is written here"),
        ]);
        assert_eq!(called(&t, "spaced.html"), ["qa"]);
        assert_eq!(
            called(&t, "nested.html"),
            ["adopter_tables", "timeline", "updates"]
        );
        assert!(called(&t, "mention.html").is_empty());
    }

    #[test]
    fn calls_in_what_a_template_names_count_for_it() {
        let t = tera(&[
            ("macros.html", "{% macro tables() %}{{ adopter_tables() | length }}{% endmacro tables %}"),
            ("base.html", "{% import \"macros.html\" as m %}<main>{% block content %}{% endblock content %}</main>{{ m::tables() }}"),
            ("part.html", "{{ updates() | length }}"),
            ("page.html", "{% extends \"base.html\" %}{% block content %}{% include \"part.html\" %}{% endblock content %}"),
            ("plain.html", "text"),
        ]);
        assert_eq!(called(&t, "page.html"), ["adopter_tables", "updates"]);
        assert_eq!(called(&t, "base.html"), ["adopter_tables"]);
        assert!(called(&t, "plain.html").is_empty());
    }
}

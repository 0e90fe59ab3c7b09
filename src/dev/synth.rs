//! Synthetic policy sets of a chosen size, for benchmarks and load tests.
//! Writes real policy files, so the real loader, validator and casbin
//! compilation are measured.

use std::fmt::Write as _;
use std::path::Path;

/// Shape of a synthetic set.
#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    pub overleggen: usize,
    pub rules_per_overleg: usize,
    /// Catalogue size of the one synthetic bron (groups of 10 fields).
    pub catalogue: usize,
    /// Fields per rule (a multiple of 10, at most `catalogue`).
    pub fields_per_rule: usize,
    /// Organisations per receiving role.
    pub orgs_per_role: usize,
}

impl SynthSpec {
    /// About 50,000 casbin rows: 50 overleggen × 10 rules × 100 fields.
    pub const FIFTY_THOUSAND: SynthSpec = SynthSpec {
        overleggen: 50,
        rules_per_overleg: 10,
        catalogue: 200,
        fields_per_rule: 100,
        orgs_per_role: 2,
    };

    pub fn p_rows(&self) -> usize {
        self.overleggen * self.rules_per_overleg * self.fields_per_rule
    }
}

/// Field path of catalogue entry `i`: `g<group>.f<i>` or, for every third
/// group, inside an array (`g<group>[].f<i>`).
pub fn field_path(i: usize) -> String {
    let g = i / 10;
    if g % 3 == 2 {
        format!("g{g}[].f{i}")
    } else {
        format!("g{g}.f{i}")
    }
}

/// Writes `partners.toml`, `bronnen/synth.toml` and the overleggen into `dir`.
pub fn write(dir: &Path, spec: SynthSpec) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("bronnen"))?;
    std::fs::create_dir_all(dir.join("overleggen"))?;
    let roles = spec.rules_per_overleg;
    let mut partners = String::new();
    let _ = writeln!(
        partners,
        "[[organisations]]\nid = \"bron-owner\"\nname = \"Synthetic owner\"\nkind = \"other\"\noin = \"00000099000000000000\"\n"
    );
    for r in 0..roles {
        for o in 0..spec.orgs_per_role {
            let _ = writeln!(
                partners,
                "[[organisations]]\nid = \"org-{r}-{o}\"\nname = \"Synthetic {r}/{o}\"\nkind = \"other\"\noin = \"000000990000{:04}{:04}\"\n",
                r + 1,
                o + 1
            );
        }
    }
    std::fs::write(dir.join("partners.toml"), partners)?;

    let mut bron = String::from(
        "id = \"synth\"\nname = \"Synthetic bron\"\nowner = \"bron-owner\"\nbase_url = \"http://127.0.0.1:9/synth\"\nsubject = \"leerling\"\n\n[[resources]]\nid = \"doc\"\npath = \"/leerlingen/{leerling}\"\nmethods = [\"GET\"]\n\n",
    );
    for i in 0..spec.catalogue {
        let _ = writeln!(
            bron,
            "[[fields]]\npath = \"{}\"\nlabel = \"Veld {i}\"\ncategory = \"normal\"\n",
            field_path(i)
        );
    }
    std::fs::write(dir.join("bronnen/synth.toml"), bron)?;

    let groups = spec.catalogue / 10;
    for o in 0..spec.overleggen {
        write_overleg(dir, o, spec, groups, "")?;
    }
    Ok(())
}

/// (Re)writes overleg `o`; `marker` changes its contents (for reload benchmarks).
pub fn write_overleg(
    dir: &Path,
    o: usize,
    spec: SynthSpec,
    groups: usize,
    marker: &str,
) -> std::io::Result<()> {
    let mut s = format!(
        "id = \"synth-{o}\"\nname = \"Synthetic overleg {o}{marker}\"\nretention_days = 730\n\n[[purposes]]\nid = \"p\"\ntext = \"Synthetic purpose\"\n\n[[roles]]\nid = \"owner\"\nname = \"Owner\"\ngrondslag = {{ law = \"X\", article = \"art. 1\", basis = [\"6.1.e\"] }}\norganisations = [\"bron-owner\"]\nmay_register_cases = true\n\n"
    );
    for r in 0..spec.rules_per_overleg {
        let orgs: Vec<String> = (0..spec.orgs_per_role)
            .map(|x| format!("\"org-{r}-{x}\""))
            .collect();
        let _ = writeln!(
            s,
            "[[roles]]\nid = \"r{r}\"\nname = \"Role {r}\"\ngrondslag = {{ law = \"X\", article = \"art. 2\", basis = [\"6.1.e\"] }}\norganisations = [{}]\n",
            orgs.join(", ")
        );
    }
    let per_rule = spec.fields_per_rule / 10;
    for r in 0..spec.rules_per_overleg {
        let globs: Vec<String> = (0..per_rule)
            .map(|k| {
                let g = (o + r + k) % groups.max(1);
                if g % 3 == 2 {
                    format!("\"g{g}[].**\"")
                } else {
                    format!("\"g{g}.*\"")
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "[[rules]]\nid = \"rule-{r}\"\npurpose = \"p\"\nfrom = \"owner\"\nto = \"r{r}\"\nbron = \"synth\"\nfields = [{}]\nconsent = \"none\"\njustification = \"synthetic\"\n",
            globs.join(", ")
        );
    }
    std::fs::write(dir.join(format!("overleggen/synth-{o}.toml")), s)
}

/// A JSON document of the synthetic bron holding the first `n` catalogue fields.
pub fn document(n: usize) -> serde_json::Value {
    let mut root = serde_json::Map::new();
    for i in 0..n {
        let path = field_path(i);
        let (group, leaf) = path.split_once('.').unwrap_or((&path, ""));
        let value = serde_json::json!(format!("waarde {i}"));
        if let Some(g) = group.strip_suffix("[]") {
            let arr = root
                .entry(g.to_owned())
                .or_insert_with(|| serde_json::json!([{}, {}]));
            if let serde_json::Value::Array(items) = arr {
                for item in items {
                    if let serde_json::Value::Object(m) = item {
                        m.insert(leaf.to_owned(), value.clone());
                    }
                }
            }
        } else {
            let obj = root
                .entry(group.to_owned())
                .or_insert_with(|| serde_json::json!({}));
            if let serde_json::Value::Object(m) = obj {
                m.insert(leaf.to_owned(), value);
            }
        }
    }
    serde_json::Value::Object(root)
}

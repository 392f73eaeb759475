//! Streams a CSV file through the native scorer, one row at a time:
//!
//!     score_csv MOJO INPUT.csv OUTPUT.csv
//!
//! The input's header names the columns (any order; a model input it lacks is missing,
//! extra columns are ignored, an empty cell is missing); the output is the scorer's
//! output names, then one row per input row. Memory stays constant whatever the number
//! of rows. `bench/score.sh` runs it next to `runtime-shim score` (which reads the whole
//! input into memory and syncs its output) to show what the scorer itself costs.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

use h2o3_scorer::H2oScorer;

fn run(mojo: &Path, input: &Path, output: &Path) -> Result<usize, String> {
    let scorer = H2oScorer::load(mojo).map_err(|e| e.to_string())?;
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(input)
        .map_err(|e| format!("{}: {e}", input.display()))?;
    let header = rdr
        .headers()
        .map_err(|e| format!("{}: {e}", input.display()))?
        .clone();
    let at: Vec<Option<usize>> = scorer
        .input_names()
        .iter()
        .map(|name| header.iter().position(|h| h == name))
        .collect();
    let file = File::create(output).map_err(|e| format!("{}: {e}", output.display()))?;
    let mut w = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
    let werr = |e: csv::Error| format!("{}: {e}", output.display());
    w.write_record(scorer.output_names()).map_err(werr)?;
    let mut rec = csv::StringRecord::new();
    let mut n = 0;
    loop {
        match rdr.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("{}: {e}", input.display())),
        }
        let cells: Vec<Option<&str>> = at
            .iter()
            .map(|i| i.and_then(|i| rec.get(i)).filter(|c| !c.is_empty()))
            .collect();
        let out = scorer
            .score(&cells)
            .map_err(|e| format!("{}: row {}: {e}", input.display(), n + 1))?;
        w.write_record(&out).map_err(werr)?;
        n += 1;
    }
    w.flush()
        .map_err(|e| format!("{}: {e}", output.display()))?;
    Ok(n)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mojo, input, output] = args.as_slice() else {
        eprintln!("usage: score_csv MOJO INPUT.csv OUTPUT.csv");
        return ExitCode::from(2);
    };
    match run(Path::new(mojo), Path::new(input), Path::new(output)) {
        Ok(n) => {
            eprintln!("scored {n} rows");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("score_csv: {e}");
            ExitCode::FAILURE
        }
    }
}

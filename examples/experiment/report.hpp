// examples/experiment/report.hpp -- the report of mint-experiment: the markdown tables of docs/results.md
// (efficiency, PRI Table 2; downstream, PRI Table 3; quantization widths; one detachment point, PRI Tables A4/A5;
// teacher confidence, PRI Figs. 5/6) and summary.json, the figures' data (scripts/plot_results.py draws them).
// It only formats what the runner measured; the statistics are mint/tasks/statistics.hpp.
#pragma once

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <mint/tasks/statistics.hpp>

#include "ladder.hpp"

namespace mint::experiment {

// "mean ± sd" over the seeds.
inline std::string pm(const std::vector<double>& v, int prec = 1) {
  const auto s = mint::tasks::summarize(v);
  return fmt(s.mean, prec) + " ± " + fmt(s.sd, prec);
}

// Everything one invocation measured (or read from the cache), by set name.
struct Results {
  explicit Results(const Args& args) : a(args) {}
  const Args& a;
  std::vector<std::string> names;                         // the synthetic methods, in --methods order
  std::map<std::string, std::vector<InversionCost>> costs;  // per seed
  std::map<std::string, std::vector<Downstream>> down;      // per seed; also "real" and "gaussian"
  std::map<std::string, std::vector<double>> conf;          // teacher confidence, pooled over seeds
  std::map<std::string, std::vector<Downstream>> stage_down;  // pri4 stage k: "pri4@k"
  std::map<std::string, std::vector<double>> stage_conf;
  std::map<int, int> pri4_stage_iteration;
  std::map<std::string, std::vector<std::vector<LadderPoint>>> ladder;  // per method, per seed, per budget
  json ref;  // teacher and backbone accuracies
  std::size_t test_images = 0, quant_test_images = 0;
  double wall = 0;
  std::string load_start, load_end;
};

inline const char* row_label(const std::string& n) {
  return n == "real" ? "real training images" : n == "gaussian" ? "Gaussian noise" : n.c_str();
}

// A table of every set's accuracy per width (get(downstream, i) in %, column i), then each set against Gaussian
// noise per seed: the widths where the data matters (real beats noise by >= 5 points on the mean of the per-seed
// differences, marked **), and each synthetic set against noise there (the issue's bar: >= 3 points).
template <class Get>
void width_tables(std::ostringstream& md, Results& r, const std::vector<std::string>& widths, Get get,
                  const char* what) {
  std::vector<std::string> rows = r.names;
  rows.push_back("real");
  rows.push_back("gaussian");
  auto acc = [&](const std::string& n, std::size_t i) {
    std::vector<double> v;
    for (const auto& d : r.down[n]) v.push_back(get(d, i));
    return v;
  };
  const auto header = [&] {
    for (const auto& q : widths) md << " " << q << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < widths.size(); ++i) md << "---:|";
    md << "\n";
  };
  md << "| data |";
  header();
  for (const auto& n : rows) {
    md << "| " << row_label(n) << " |";
    for (std::size_t i = 0; i < widths.size(); ++i) md << " " << pm(acc(n, i)) << " |";
    md << "\n";
  }
  md << "\nAgainst Gaussian noise, per-seed difference in points, mean ± sd (smallest over the seeds). A width where "
        "real images beat noise by >= 5 points is one where " << what << " matters (marked **).\n\n| set |";
  header();
  std::vector<std::string> vs = {"real"};
  vs.insert(vs.end(), r.names.begin(), r.names.end());
  for (const auto& n : vs) {
    md << "| " << row_label(n) << " − noise |";
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const auto d = mint::tasks::paired_differences(acc(n, i), acc("gaussian", i), n + " − gaussian");
      const auto s = mint::tasks::summarize(d);
      const bool matters = n == "real" && s.mean >= 5.0;
      md << " " << (matters ? "**" : "") << pm(d) << " (" << fmt(s.min, 1) << ")" << (matters ? "**" : "") << " |";
    }
    md << "\n";
  }
}

// The quantization section: every setting of quant_settings() calibrated on every set.
inline void quantization_tables(std::ostringstream& md, Results& r) {
  md << "\n## Quantization widths: where calibration matters\n\n"
        "Teacher fake-quantized (SMI Eq. 5: every linear layer; weights per output channel, \"pt\" = per tensor; "
        "activations per tensor, min/max over the calibration set unless marked: \"p99.99\" clips 0.01 % of each "
        "layer input's values at each end, \"mse\" takes the range of least expected quantization error over them; "
        "tasks::choose_ranges), top-1 % on the first " << r.quant_test_images
     << " test images, mean ± sd over seeds. Weight ranges come from the weights alone, so only the activation "
        "ranges depend on the calibration set. FP teacher on these images: "
     << fmt(r.ref["teacher_fp_quant_test"].get<double>(), 2) << " %.\n\n";
  std::vector<std::string> widths;
  for (const auto& q : quant_settings()) widths.push_back(q.name);
  width_tables(md, r, widths, [&](const Downstream& d, std::size_t i) { return d.quant.at(widths[i]); },
               "calibration");
}

// The QAT section (--qat-epochs): LSQ training on every set at every qat_settings() width.
inline void qat_tables(std::ostringstream& md, Results& r) {
  const Args& a = r.a;
  if (a.qat_epochs <= 0) return;
  md << "\n## Quantization-aware training (PRI Table 3a): LSQ on each set\n\n"
        "The teacher fake-quantized at each width (weights per output channel, MSE activation ranges calibrated on "
        "the set), then trained on the set alone by KD from the float teacher (tasks/qat.hpp: LSQ's "
        "straight-through gradients, latent weights and the quantization ranges learned; "
     << a.qat_epochs << " epochs, batch 32, Adam lr " << fmt(a.qat_lr, 5) << " for the weights and "
     << fmt(a.qat_range_lr, 5) << " for the ranges, tau 1" << (a.flip ? ", random flips" : "")
     << "), top-1 % on the first " << r.quant_test_images
     << " test images, mean ± sd over seeds (the seed also orders the training). Before training each model is "
        "the post-training one of the quantization section (same width, \"mse\").\n\n";
  std::vector<std::string> widths, keys;
  for (const auto& q : qat_settings()) widths.push_back(q.name), keys.push_back(qat_key(q, a));
  width_tables(md, r, widths, [&](const Downstream& d, std::size_t i) { return d.qat.at(keys[i]); },
               "the training data");
}

// The figures' data: per set, the per-seed student measures and inversion seconds, and the confidences.
inline json summary_json(Results& r) {
  json sets = json::object();
  auto put = [&](const std::string& n) {
    json s;
    std::vector<double> all, within, unseen, secs;
    for (const auto& d : r.down[n]) all.push_back(d.student.all), within.push_back(d.student.unseen_within),
        unseen.push_back(d.student.unseen);
    for (const auto& c : r.costs[n]) secs.push_back(c.seconds());
    s["student_all"] = all, s["student_unseen_within"] = within, s["student_unseen"] = unseen;
    s["inversion_seconds"] = secs;
    if (!r.costs[n].empty()) s["cost"] = r.costs[n][0].meter;
    s["confidence"] = r.conf[n];
    sets[n] = s;
  };
  for (const auto& n : r.names) put(n);
  put("real"), put("gaussian");
  json stages = json::object();
  for (const auto& [k, v] : r.stage_conf) stages[k] = v;
  json ladder = json::object();
  for (const auto& [n, seeds] : r.ladder) {
    json pts = json::array();
    for (std::size_t b = 0; !seeds.empty() && b < seeds[0].size(); ++b) {
      json p = {{"budget", seeds[0][b].budget}, {"images", seeds[0][b].images}, {"gflop", seeds[0][b].gflop}};
      std::vector<double> secs, within, all;
      for (const auto& s : seeds)
        if (b < s.size())
          secs.push_back(s[b].seconds), within.push_back(s[b].down.student.unseen_within),
              all.push_back(s[b].down.student.all);
      p["seconds"] = secs, p["student_unseen_within"] = within, p["student_all"] = all;
      pts.push_back(p);
    }
    ladder[n] = pts;
  }
  return {{"command", r.a.command}, {"sets", sets},   {"methods", r.names}, {"stage_confidence", stages},
          {"ladder", ladder}};
}

// The efficiency table (PRI Table 2) of the given methods' inversions, one entry per seed.
inline void efficiency_table(std::ostringstream& md, const std::vector<std::string>& names,
                             std::map<std::string, std::vector<InversionCost>>& costs) {
  md << "## Efficiency (PRI Table 2)\n\nThe inversions of this run: per seed, summed over the inversion batches; "
        "mean ± sd over seeds. Costs from mint::CostMeter: executed GEMM FLOPs per image over DMI's "
        "(cost_vs_dmi, method / DMI) and PRI's Theorem 1 in the same form (theorem1_cost_vs_dmi); the speedup is "
        "the inverse, DMI's time per image over the method's. Each timing was recorded when its set was inverted and "
        "is cached with it (possibly by an earlier invocation than the one above), on a machine shared with other "
        "jobs.\n\n"
     << "| method | images | trajectories | final active patches | its/s | GFLOP | FLOPs per image, method / DMI | "
        "Theorem 1, method / DMI | peak MiB | inversion s | speedup vs DMI (inverse: DMI / method, time per image) |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  const double dmi_sec = costs.count("dmi") ? [&] {
    std::vector<double> s;
    for (const auto& c : costs["dmi"]) s.push_back(c.seconds() / static_cast<double>(c.images()));
    return mint::tasks::summarize(s).mean;
  }() : 0.0;
  for (const auto& n : names) {
    std::vector<double> its, sec;
    for (const auto& c : costs[n])
      its.push_back(static_cast<double>(c.iterations_run) / c.seconds()), sec.push_back(c.seconds());
    const auto& c0 = costs[n][0];
    const double per_img = mint::tasks::summarize(sec).mean / static_cast<double>(c0.images());
    md << "| " << n << " | " << c0.images() << " | " << c0.trajectories << " | "
       << c0.meter.at("final_active").get<std::int64_t>() << " | " << pm(its) << " | " << fmt(c0.gflop(), 1) << " | "
       << fmt(c0.meter.at("cost_vs_dmi").get<double>(), 3) << " | "
       << fmt(c0.meter.at("theorem1_cost_vs_dmi").get<double>(), 3) << " | "
       << fmt(c0.meter.at("peak_tensor_mib").get<double>(), 1) << " | " << pm(sec) << " | "
       << (dmi_sec > 0 ? fmt(dmi_sec / per_img) : "-") << " |\n";
  }

}

// The equal-budget ladder (ladder.hpp): per method and budget, what it bought and the students on it; then each
// method against DMI at the same budget, per seed.
inline void ladder_tables(std::ostringstream& md, Results& r) {
  if (r.ladder.empty()) return;
  const char* q = "W8/A2 mse";
  md << "\n## Equal budget (PRI Fig. 1b): accuracy against executed FLOPs\n\n"
        "Each budget is executed GEMM FLOPs (mint::CostMeter), in units of what DMI spends on one image at T = "
     << r.a.iterations << "; each method makes as many images as the budget buys, in whole trajectories "
        "(examples/experiment/ladder.hpp). Seconds: the set's inversion time pro rata of the images (recorded when "
        "the set was inverted, 1 thread, machine shared). Mean ± sd over seeds.\n\n"
        "| method | budget (DMI images) | images | GFLOP | inversion s | student 5-9, 5-way | student all 10 | "
     << q << " |\n|---|---:|---:|---:|---:|---:|---:|---:|\n";
  auto measure = [](const std::vector<std::vector<LadderPoint>>& seeds, std::size_t b, auto f) {
    std::vector<double> v;
    for (const auto& s : seeds)
      if (b < s.size()) v.push_back(f(s[b]));
    return v;
  };
  for (const auto& n : r.names) {
    if (!r.ladder.count(n)) continue;
    const auto& seeds = r.ladder.at(n);
    for (std::size_t b = 0; !seeds.empty() && b < seeds[0].size(); ++b) {
      const auto& p0 = seeds[0][b];
      md << "| " << n << " | " << fmt(p0.budget, 0) << " | " << p0.images << " | " << fmt(p0.gflop, 0) << " | "
         << pm(measure(seeds, b, [](const LadderPoint& p) { return p.seconds; })) << " | "
         << pm(measure(seeds, b, [](const LadderPoint& p) { return p.down.student.unseen_within; })) << " | "
         << pm(measure(seeds, b, [](const LadderPoint& p) { return p.down.student.all; })) << " | "
         << pm(measure(seeds, b, [&](const LadderPoint& p) { return p.down.quant.at(q); })) << " |\n";
    }
  }
  if (!r.ladder.count("dmi")) return;
  md << "\nEach method − DMI at the same budget, per-seed difference in points, mean ± sd (smallest over the seeds):"
        " student 5-9 5-way / student all 10.\n\n| method | budget (DMI images) | 5-9, 5-way | all 10 |\n"
        "|---|---:|---:|---:|\n";
  const auto& dmi = r.ladder.at("dmi");
  for (const auto& n : r.names) {
    if (n == "dmi" || !r.ladder.count(n)) continue;
    const auto& seeds = r.ladder.at(n);
    for (std::size_t b = 0; !seeds.empty() && b < seeds[0].size(); ++b) {
      md << "| " << n << " | " << fmt(seeds[0][b].budget, 0);
      for (auto field : {&StudentAcc::unseen_within, &StudentAcc::all}) {
        std::vector<double> d;
        for (std::size_t s = 0; s < seeds.size() && s < dmi.size(); ++s)
          for (const auto& pd : dmi[s])
            if (b < seeds[s].size() && pd.budget == seeds[s][b].budget)
              d.push_back(seeds[s][b].down.student.*field - pd.down.student.*field);
        md << " | " << (d.empty() ? "-" : pm(d) + " (" + fmt(*std::min_element(d.begin(), d.end()), 1) + ")");
      }
      md << " |\n";
    }
  }
}

// SMI's official student loop (--pool-steps): the student after the last step and the best over the steps, per
// set, and each synthetic set against Gaussian noise per seed.
inline void pool_tables(std::ostringstream& md, Results& r) {
  std::vector<std::string> rows = r.names;
  rows.push_back("real");
  rows.push_back("gaussian");
  for (const auto& n : rows)
    for (const auto& d : r.down[n])
      if (!d.pool) return;  // not asked for (or not yet measured for every set)
  auto col = [&](const std::string& n, auto f) {
    std::vector<double> v;
    for (const auto& d : r.down[n]) v.push_back(f(*d.pool));
    return v;
  };
  md << "\n## SMI's official student loop (test_kt.py)\n\n"
        "tasks::distill_linear_probe_pool: the pool grows linearly to the whole set over "
     << r.down[rows.front()].front().pool->steps
     << " steps (one synthesis batch per step in SMI's code), each step one head-only SGD step on 32 images "
        "sampled from the pool so far, tau 20 (test_kt.py's values). \"best\" is the highest accuracy over the "
        "steps, as test_kt.py prints it: selected on the test set, so optimistic. Mean ± sd over seeds.\n\n"
        "| data | last: 5-9, 5-way | last: 5-9 (argmax over 10) | last: all 10 | best: 5-9, 5-way | best: all 10 | "
        "last 5-way − noise (smallest) |\n|---|---:|---:|---:|---:|---:|---:|\n";
  const auto noise = col("gaussian", [](const PoolAcc& p) { return p.last.unseen_within; });
  for (const auto& n : rows) {
    const auto within = col(n, [](const PoolAcc& p) { return p.last.unseen_within; });
    const auto d = mint::tasks::paired_differences(within, noise, n + " − gaussian");
    md << "| " << row_label(n) << " | " << pm(within) << " | "
       << pm(col(n, [](const PoolAcc& p) { return p.last.unseen; })) << " | "
       << pm(col(n, [](const PoolAcc& p) { return p.last.all; })) << " | "
       << pm(col(n, [](const PoolAcc& p) { return p.best_within; })) << " | "
       << pm(col(n, [](const PoolAcc& p) { return p.best_all; })) << " | "
       << (n == "gaussian" ? std::string("-") : pm(d) + " (" + fmt(mint::tasks::summarize(d).min, 1) + ")") << " |\n";
  }
}

// results.md: every table of the run.
inline std::string results_markdown(Results& r) {
  const Args& a = r.a;
  auto col = [&](const std::vector<Downstream>& v, auto f) {
    std::vector<double> x;
    for (const auto& d : v) x.push_back(f(d));
    return x;
  };
  std::ostringstream md;
  md << "## Sizes of this run\n\n"
     << "- command: `" << a.command << "`\n"
     << "- " << a.seeds << " seeds; " << a.images << " output images per method; T = " << a.iterations
     << " iterations per trajectory; inversion batches of at most " << a.inv_batch << " trajectories; augmentation "
     << a.augment << "; TV weight " << a.tv
     << (a.bn_prior > 0.0f ? "; borrowed-CNN BN prior " + fmt(a.bn_prior, 4) + " (`" + a.bn_cnn + "`)" : "") << "\n"
     << "- distillation: " << a.epochs << " epochs, batch " << a.batch << ", SGD lr " << a.lr
     << " (momentum 0.9, wd 1e-4), tau " << a.tau << ", " << (a.probe ? "linear probing (head only)" : "full fine-tuning")
     << ", flip " << (a.flip ? "on" : "off") << "; student backbone `" << a.backbone << "`\n"
     << "- student accuracy on " << r.test_images << " test images; quantized accuracy on the first " << r.quant_test_images
     << " test images\n"
     << "- wall time of this invocation: " << fmt(r.wall, 0) << " s (cached entries are read, not recomputed); "
     << mint::cpu::num_threads() << " thread(s); load average at start / end: " << r.load_start << " / " << r.load_end
     << "\n\n";
  md << "Reference: teacher FP " << fmt(r.ref["teacher_all"].get<double>(), 2) << "% on all ten classes ("
     << fmt(r.ref["teacher_unseen"].get<double>(), 2) << "% on 5-9; " << fmt(r.ref["teacher_fp_quant_test"].get<double>(), 2)
     << "% on the quantization test images); the student backbone before distillation "
     << fmt(r.ref["backbone_all"].get<double>(), 2) << "% on all ten, " << fmt(r.ref["backbone_seen"].get<double>(), 2)
     << "% on 0-4, " << fmt(r.ref["backbone_unseen"].get<double>(), 2) << "% on 5-9.\n\n";

  efficiency_table(md, r.names, r.costs);
  std::map<std::string, std::vector<double>> all10, within;
  md << "\n## Downstream (PRI Table 3): distillation and data-free quantization\n\n"
        "Student top-1 (%) on the real test set: on the five classes its backbone never saw (5-9) with the argmax "
        "over all ten classes; the same with the argmax over 5-9 only (5-way, chance 20 %); on all ten; on 0-4. "
        "Teacher fake-quantized W4/A8 and W8/A8, calibrated on the set (top-1 %, all ten classes; the other widths "
        "in the quantization section). Mean ± sd over seeds.\n\n"
     << "| data | student 5-9 (unseen) | student 5-9, 5-way | student all 10 | student 0-4 | W4/A8 | W8/A8 | distillation s |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::vector<std::string> rows = r.names;
  rows.push_back("real");
  rows.push_back("gaussian");
  for (const auto& n : rows) {
    const auto& v = r.down[n];
    all10[n] = col(v, [](const Downstream& d) { return d.student.all; });
    within[n] = col(v, [](const Downstream& d) { return d.student.unseen_within; });
    md << "| " << (n == "real" ? "real training images" : n == "gaussian" ? "Gaussian noise" : n) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.unseen; })) << " | " << pm(within[n]) << " | "
       << pm(all10[n]) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.seen; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.quant.at("W4/A8"); })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.quant.at("W8/A8"); })) << " | "
       << fmt(mint::tasks::summarize(col(v, [](const Downstream& d) { return d.distill_s; })).mean, 1) << " |\n";
  }
  // the bar of the issue: the best synthetic method against Gaussian noise, per seed, for each measure
  const std::vector<std::pair<std::string, double StudentAcc::*>> measures{
      {"student 5-9 (argmax over 10)", &StudentAcc::unseen},
      {"student 5-9 (5-way)", &StudentAcc::unseen_within},
      {"student all 10", &StudentAcc::all}};
  md << "\nBest synthetic method per measure against Gaussian noise (per-seed differences in points, mean ± sd, "
        "and the smallest):\n\n| measure | ordering of the synthetic methods (means) | best | best − Gaussian | smallest "
        "per-seed difference |\n|---|---|---|---:|---:|\n";
  for (const auto& [label, field] : measures) {
    if (r.names.empty()) break;  // --methods none: the baselines only
    std::map<std::string, std::vector<double>> v;
    for (const auto& n : rows)
      for (const auto& d : r.down[n]) v[n].push_back(d.student.*field);
    std::vector<std::string> order = r.names;
    std::sort(order.begin(), order.end(), [&](auto& x, auto& y) { return mint::tasks::summarize(v[x]).mean > mint::tasks::summarize(v[y]).mean; });
    std::vector<double> margin;
    for (std::size_t s = 0; s < v["gaussian"].size(); ++s)
      margin.push_back(v[order[0]][s] - v["gaussian"][s]);
    md << "| " << label << " | ";
    for (std::size_t i = 0; i < order.size(); ++i) md << (i ? " > " : "") << order[i] << " " << fmt(mint::tasks::summarize(v[order[i]]).mean, 1);
    md << " | " << order[0] << " | " << pm(margin) << " | " << fmt(*std::min_element(margin.begin(), margin.end()), 1) << " |\n";
  }
  md << "\nEvery synthetic method against Gaussian noise: per-seed difference in points, mean ± sd (smallest over the "
        "seeds).\n\n| method | student all 10 | student 5-9, 5-way | student 5-9 (argmax over 10) |\n|---|---:|---:|---:|\n";
  // one table row: x − y per seed on the three student measures, mean ± sd (smallest)
  auto diff_row = [&](const std::string& label, const std::string& x, const std::string& y) {
    md << "| " << label;
    for (auto field : {&StudentAcc::all, &StudentAcc::unseen_within, &StudentAcc::unseen}) {
      std::vector<double> diff;
      for (std::size_t s = 0; s < r.down[x].size(); ++s) diff.push_back(r.down[x][s].student.*field - r.down[y][s].student.*field);
      md << " | " << pm(diff) << " (" << fmt(*std::min_element(diff.begin(), diff.end()), 1) << ")";
    }
    md << " |\n";
  };
  for (const auto& n : r.names) diff_row(n, n, "gaussian");
  // the papers' ordering claims (DMI >~ PRI > SMI at equal sparsity) as paired per-seed differences
  const std::vector<std::pair<std::string, std::string>> pairs{{"dmi", "pri2"},   {"dmi", "pri4"},   {"dmi", "pri7"},
                                                               {"pri2", "smi50"}, {"pri4", "smi76"}, {"pri7", "smi86"}};
  md << "\nPairs for the papers' ordering (DMI ≳ PRI > SMI at equal sparsity: PRI v = 2/4/7 end with 25/13/7 of 49 "
        "patches, SMI 50/76/86 % with 23/11/6): per-seed difference in points, mean ± sd (smallest over the seeds).\n\n"
        "| pair | student all 10 | student 5-9, 5-way | student 5-9 (argmax over 10) |\n|---|---:|---:|---:|\n";
  for (const auto& [x, y] : pairs) {
    if (r.down.count(x) && r.down.count(y)) diff_row(x + " − " + y, x, y);
  }
  // what the students predict on the real test images of 5-9: the class predicted most often and its share, per
  // seed (a head that predicts one unseen class for everything scores about 20 % on 5-9 without knowing any)
  auto top_share = [](const std::vector<double>& v, int offset) {
    const auto it = std::max_element(v.begin(), v.end());
    return std::to_string(offset + static_cast<int>(it - v.begin())) + " (" + fmt(*it, 0) + " %)";
  };
  md << "\nPredictions on the 5,000 real test images of classes 5-9: the class each seed's student predicts most "
        "often there, and the share of those images it receives (argmax over all ten; argmax over 5-9). A student that "
        "puts nearly all of them into one unseen class scores about 20 % on 5-9 without telling the classes apart.\n\n"
     << "| data | argmax over 10: most predicted class (share), per seed | 5-way: most predicted class (share), per "
        "seed |\n|---|---|---|\n";
  for (const auto& n : rows) {
    md << "| " << (n == "real" ? "real training images" : n == "gaussian" ? "Gaussian noise" : n) << " | ";
    for (std::size_t s = 0; s < r.down[n].size(); ++s) md << (s ? ", " : "") << top_share(r.down[n][s].student.pred_unseen, 0);
    md << " | ";
    for (std::size_t s = 0; s < r.down[n].size(); ++s) md << (s ? ", " : "") << top_share(r.down[n][s].student.pred_within, 5);
    md << " |\n";
  }
  md << "\n## Only the images of one detachment point (PRI Tables A4, A5), PRI v = 4\n\n"
     << "Each row uses only the " << a.images / 4 << " images detached at that point (stage 4: the remaining patches "
        "at T); same distillation and calibration as above.\n\n"
     << "| stage | detached after iteration | student 5-9 | student 5-9, 5-way | student all 10 | W4/A8 | W8/A8 | mean teacher confidence |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [k, it] : r.pri4_stage_iteration) {
    const std::string sk = "pri4@" + std::to_string(k);
    const auto& v = r.stage_down[sk];
    md << "| " << k << " | " << it << " | " << pm(col(v, [](const Downstream& d) { return d.student.unseen; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.unseen_within; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.student.all; })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.quant.at("W4/A8"); })) << " | "
       << pm(col(v, [](const Downstream& d) { return d.quant.at("W8/A8"); })) << " | " << fmt(mint::tasks::summarize(r.stage_conf[sk]).mean, 3) << " |\n";
  }

  const int bins = 10;
  auto hist_row = [&](const std::string& label, const std::vector<double>& v) {
    md << "| " << label << " | " << v.size() << " | " << fmt(mint::tasks::summarize(v).mean, 3);
    for (double f : mint::tasks::unit_histogram(v, bins)) md << " | " << fmt(100.0 * f, 0);
    md << " |\n";
  };
  md << "\n## Teacher confidence (PRI Figures 5, 6)\n\n"
        "The teacher's softmax probability of each image's target class, on the image's kept patches only; all "
        "seeds pooled. Columns: % of images per confidence bin of width 0.1. Figures: `accuracy_vs_time.png` "
        "and `accuracy_vs_time_unseen.png` (Fig. 1b; all ten classes, and 5-9 5-way) and `confidence.png` (these "
        "histograms).\n\n"
     << "| set | images | mean | [0,.1) | [.1,.2) | [.2,.3) | [.3,.4) | [.4,.5) | [.5,.6) | [.6,.7) | [.7,.8) | [.8,.9) | [.9,1] |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& n : r.names) hist_row(n, r.conf[n]);
  hist_row("gaussian", r.conf["gaussian"]);
  for (const auto& [sk, v] : r.stage_conf) hist_row(sk + " (stage " + sk.substr(sk.find('@') + 1) + ")", v);

  pool_tables(md, r);
  ladder_tables(md, r);
  quantization_tables(md, r);
  qat_tables(md, r);
  return md.str();
}

}  // namespace mint::experiment

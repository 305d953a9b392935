// The outputs the report tests read back (CTest fixture mint_report_outputs, tests/CMakeLists.txt):
//   <dir>/grey/  a tiny PRI inversion of the embedded teacher (v = 2, 30 iterations, 4 trajectories: 8 images),
//                written by report::write_inversion_outputs as mint-invert writes them (grid, image folder,
//                dataset, report.html); check_export.py and check_report_chromium.sh read it.
//   <dir>/rgb/   three-channel images with a per-channel normalisation and random masks (no model: the RGBA
//                path of the image-folder export), as an image folder plus the dataset file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include <mint/mint.hpp>

int main(int argc, char** argv) {
  try {
    mint::check(argc == 2, "usage: mint_report_fixture OUT_DIR");
    const std::string out = argv[1], recipe = std::string(MINT_MODELS_DIR) + "/fmnist_vit.json";
    std::filesystem::create_directories(out + "/rgb");
    auto teacher = mint::ViT<>::load(std::string(MINT_MODELS_DIR) + "/fmnist_vit.safetensors");
    const auto j = nlohmann::json::parse(std::ifstream(recipe));
    const mint::Normalization norm{{j.at("normalization").at("mean").get<float>()},
                                   {j.at("normalization").at("std").get<float>()}};
    mint::InversionOptions opt;
    opt.iterations = 30, opt.seed = 7, opt.pixel_lo = norm.lo(0), opt.pixel_hi = norm.hi(0);
    mint::PRI<mint::ViT<>> pri(teacher, {}, mint::TV{1e-4f}, {}, mint::Rebirth{2}, {}, opt);
    const auto res = pri.run({0, 3, 8, 9});
    mint::report::RunDescription d;
    d.title = "mint report fixture <test> & \"escaping\"";
    const char* cmd[] = {"mint-invert", "--method", "pri", "--v", "2", "--out", "dir with 'quotes' <b>"};
    d.command_line = mint::report::command_line(7, cmd);
    d.model_path = "fmnist_vit.safetensors", d.normalization = norm;
    d.class_names = mint::report::read_class_names(recipe, teacher.config().classes);
    d.settings = {{"method", "pri"}, {"v", 2}, {"iterations", opt.iterations}};
    d.cost = {{"seconds", 0.5}};
    mint::report::write_inversion_outputs(out + "/grey", teacher, res, d);

    // RGB: pixels uniform over each channel's valid range widened by 10% (so clamping is exercised).
    const mint::Normalization rgb{{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    std::uint64_t draw = 0;
    auto uniform = [&] { return mint::philox_uniform(11, 0, draw++); };
    std::vector<mint::SparseImage> images;
    for (int i = 0; i < 6; ++i) {
      mint::SparseImage s{mint::Tensor<>::empty(mint::Shape{3, 8, 12}), mint::Tensor<>::empty(mint::Shape{6}), i % 3,
                          0};
      for (std::int64_t k = 0; k < s.pixels.numel(); ++k) {
        const std::int64_t c = k / 96;
        const float lo = rgb.lo(c), hi = rgb.hi(c), pad = 0.1f * (hi - lo);
        s.pixels[k] = lo - pad + uniform() * (hi - lo + 2 * pad);
      }
      for (std::int64_t k = 0; k < 6; ++k) s.mask[k] = uniform() < 0.5f ? 1.0f : 0.0f;
      images.push_back(s);
    }
    const std::vector<std::string> names{"red/ish", "green", "blue"};
    mint::report::export_image_folder(out + "/rgb/images", images, rgb, 4, 3, names);
    mint::report::save_dataset(out + "/rgb/dataset.safetensors", images, rgb, names);
    std::printf("wrote %s/grey and %s/rgb\n", out.c_str(), out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mint_report_fixture: %s\n", e.what());
    return 1;
  }
}

// mint/io/pytorch.hpp -- a safe reader for `torch.save` checkpoints (.pth / .bin, PyTorch >= 1.6 zip format), so
// DeiT's official weights, timm 0.6 checkpoints and `{"model": state_dict}` wrappers load without Python.
//
// The container is a zip archive (read with libzip): <dir>/data.pkl is a pickle, <dir>/data/<key> holds the raw
// little-endian bytes of storage <key>. The pickle is interpreted by a small stack machine that knows only the
// opcodes torch.save emits (protocol 2, plus the protocol-4 framing opcodes) and builds only data: dicts, lists,
// tuples, strings, numbers, and tensors. It never executes anything. A GLOBAL is accepted only if it is one of
// the names PyTorch's own `torch.load(weights_only=True)` allows for plain tensor checkpoints:
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_tensor / _rebuild_parameter, and the
//   torch.<T>Storage types (persistent ids `('storage', torch.<T>Storage, key, location, numel)`, the form of
//   torch/serialization.py `_save`'s persistent_id for typed storages);
// any other global (os.system, builtins.eval, a user class, ...) is refused with an error naming it.
//
// Tensors are `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)` views (torch/_utils.py); every view
// is copied out into a contiguous float32 mint tensor (F32/F16/BF16 exactly, F64 rounded, integers as in
// safetensors.hpp). Views sharing a storage share its bytes while reading. The file is untrusted: every count,
// offset, stride and size is checked (overflow-safe) against the bytes that are really there before anything sized
// by it is allocated, nesting is bounded, and all bytes decompressed or produced are capped at a small multiple of
// the file size. Errors are mint::Error naming the file and the problem.
#pragma once

#include <zip.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mint/core/error.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"
#include "mint/io/safetensors.hpp"

namespace mint::io {

struct PytorchFile {
  // Every tensor in the pickled object, converted to float32 and contiguous, named by its path in the object:
  // dict keys and list/tuple indices joined by '.' ({"model": {"head.weight": t}} -> "model.head.weight").
  std::map<std::string, Tensor<Cpu>> tensors;
  std::map<std::string, std::string> dtypes;  // original dtype per name, as safetensors spells it ("F32", "BF16")
  std::string source;                         // where the bytes came from, for error messages

  // The tensor called `name`; throws naming the key, the source and a few names that do exist.
  [[nodiscard]] const Tensor<Cpu>& at(const std::string& name) const;
  [[nodiscard]] bool contains(const std::string& name) const { return tensors.count(name) != 0; }
};

namespace detail {

// Nesting of dicts/lists/tuples deeper than this is refused (a state dict nests 1 to 3 deep).
inline constexpr int kPickleMaxDepth = 64;
// Bytes read out of the archive plus float32 bytes produced may not exceed this multiple of the file size
// (plus 1 MiB). torch.save stores records uncompressed, and an F16 / BF16 checkpoint doubles in float32.
inline constexpr std::uint64_t kPytorchExpansion = 16;

// Storage class name (torch.<Name>) -> safetensors dtype string understood by convert_to_f32.
inline const char* torch_storage_dtype(const std::string& name) {
  static const std::map<std::string, const char*> kTypes = {
      {"FloatStorage", "F32"}, {"HalfStorage", "F16"}, {"BFloat16Storage", "BF16"}, {"DoubleStorage", "F64"},
      {"LongStorage", "I64"},  {"IntStorage", "I32"},  {"ShortStorage", "I16"},     {"CharStorage", "I8"},
      {"ByteStorage", "U8"},   {"BoolStorage", "BOOL"}};
  const auto it = kTypes.find(name);
  return it == kTypes.end() ? nullptr : it->second;
}

// The bytes budget shared by archive reads and tensor outputs.
struct ByteBudget {
  std::uint64_t left = 0;
  std::string where;
  void take(std::uint64_t n, const std::string& what) {
    check(n <= left, where, what, " needs ", n, " bytes, more than the ", left, " bytes left of the reader's budget (",
          kPytorchExpansion, "x the file size + 1 MiB): the file claims more data than it holds");
    left -= n;
  }
};

// A read-only libzip archive over a memory buffer or a file. Owns the zip_t.
class ZipReader {
 public:
  ZipReader(zip_source_t* src, const std::string& where) : where_(where) {
    zip_error_t err;
    zip_error_init(&err);
    zip_ = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (zip_ == nullptr) {
      const std::string msg = zip_error_strerror(&err);
      zip_error_fini(&err);
      zip_source_free(src);
      throw Error(mint::detail::concat(where, "not a readable zip archive (", msg,
                                       "); torch.save (PyTorch >= 1.6) writes zip files, so the file is truncated, "
                                       "corrupt or not a PyTorch checkpoint"));
    }
    zip_error_fini(&err);
  }
  ~ZipReader() {
    if (zip_ != nullptr) zip_discard(zip_);
  }
  ZipReader(const ZipReader&) = delete;
  ZipReader& operator=(const ZipReader&) = delete;

  [[nodiscard]] std::vector<std::string> names() const {
    const zip_int64_t n = zip_get_num_entries(zip_, 0);
    std::vector<std::string> out;
    for (zip_int64_t i = 0; i < n; ++i) {
      const char* name = zip_get_name(zip_, static_cast<zip_uint64_t>(i), 0);
      check(name != nullptr, where_, "zip entry ", i, " has no readable name: ", zip_strerror(zip_));
      out.emplace_back(name);
    }
    return out;
  }
  [[nodiscard]] bool contains(const std::string& name) const { return zip_name_locate(zip_, name.c_str(), 0) >= 0; }

  // The uncompressed size the archive declares for `name`; throws naming the entry if there is none.
  [[nodiscard]] std::uint64_t size_of(const std::string& name) const {
    zip_stat_t st;
    zip_stat_init(&st);
    check(zip_stat(zip_, name.c_str(), 0, &st) == 0, where_, "no record '", name, "' in the archive");
    check((st.valid & ZIP_STAT_SIZE) != 0, where_, "record '", name, "' has no size");
    return st.size;
  }

  // The whole entry `name`, after charging its declared size to `budget`. Throws if the entry is missing,
  // shorter than declared, or fails libzip's checks (CRC, decompression).
  [[nodiscard]] std::vector<std::uint8_t> read(const std::string& name, ByteBudget& budget) const {
    const std::uint64_t size = size_of(name);
    budget.take(size, "record '" + name + "'");
    zip_file_t* f = zip_fopen(zip_, name.c_str(), 0);
    check(f != nullptr, where_, "cannot open record '", name, "': ", zip_strerror(zip_));
    std::vector<std::uint8_t> out(static_cast<std::size_t>(size));
    std::uint64_t got = 0;
    std::string error;
    while (got < size) {
      const zip_int64_t n = zip_fread(f, out.data() + got, size - got);
      if (n < 0) {
        error = zip_file_strerror(f);
        break;
      }
      if (n == 0) break;
      got += static_cast<std::uint64_t>(n);
    }
    std::uint8_t extra = 0;  // reading one byte more detects a record longer than declared
    const zip_int64_t more = error.empty() ? zip_fread(f, &extra, 1) : 0;
    if (more < 0 && error.empty()) error = zip_file_strerror(f);
    zip_fclose(f);
    check(error.empty(), where_, "record '", name, "' cannot be read: ", error);
    check(got == size && more == 0, where_, "record '", name, "' declares ", size, " bytes but holds ",
          more > 0 ? "more" : std::to_string(got));
    return out;
  }

 private:
  zip_t* zip_ = nullptr;
  std::string where_;
};

// ---- the pickle machine ------------------------------------------------------------------------------------
// Values are small handles; strings, containers, storages and tensors live in arenas owned by the machine, so a
// memo entry fetched a million times costs a handle each time, and cyclic or shared structures cannot leak.
struct PickleValue {
  enum class Kind : std::uint8_t { None, Bool, Int, Float, Str, Global, Tuple, List, Dict, Storage, Tensor };
  Kind kind = Kind::None;
  std::int64_t i = 0;  // Bool / Int value
  double f = 0.0;      // Float value
  std::size_t ref = 0; // index into the arena of its kind (Str and Global: strings; Tuple/List/Dict: containers)
};

inline const char* pickle_kind_name(PickleValue::Kind k) {
  switch (k) {
    case PickleValue::Kind::None: return "None";
    case PickleValue::Kind::Bool: return "bool";
    case PickleValue::Kind::Int: return "int";
    case PickleValue::Kind::Float: return "float";
    case PickleValue::Kind::Str: return "str";
    case PickleValue::Kind::Global: return "global";
    case PickleValue::Kind::Tuple: return "tuple";
    case PickleValue::Kind::List: return "list";
    case PickleValue::Kind::Dict: return "dict";
    case PickleValue::Kind::Storage: return "storage";
    case PickleValue::Kind::Tensor: return "tensor";
  }
  return "?";
}

class PickleMachine {
 public:
  // loader(ctx, key, dtype, numel) returns storage `key`'s bytes, checked to hold numel elements of dtype.
  using StorageLoader = std::vector<std::uint8_t> (*)(void*, const std::string&, const char*, std::int64_t);

  PickleMachine(const std::vector<std::uint8_t>& pickle, const std::string& where, ByteBudget& budget,
                void* loader_ctx, StorageLoader loader)
      : p_(pickle), where_(where), budget_(budget), ctx_(loader_ctx), loader_(loader) {}

  // Runs the pickle to STOP and returns the flattened tensors.
  PytorchFile run() {
    const PickleValue root = execute();
    PytorchFile out;
    std::size_t visits = 0;
    std::size_t items = 0;
    for (const auto& c : containers_) items += c.items.size();
    const std::size_t max_visits = 4 * items + 1024;
    flatten(root, "", 0, visits, max_visits, out);
    return out;
  }

 private:
  using Kind = PickleValue::Kind;
  struct Container {
    Kind kind;
    std::vector<PickleValue> items;  // Dict: key, value, key, value, ...
    int depth = 1;
  };
  struct StorageRec {
    std::string key;
    const char* dtype;
    std::int64_t numel;
  };
  struct TensorRec {
    Tensor<Cpu> t;
    std::string dtype;
  };

  const std::vector<std::uint8_t>& p_;
  std::string where_;
  ByteBudget& budget_;
  void* ctx_;
  StorageLoader loader_;
  std::size_t pos_ = 0;
  std::vector<PickleValue> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, PickleValue> memo_;
  std::vector<std::string> strings_;
  std::vector<Container> containers_;
  std::vector<StorageRec> storages_;
  std::vector<TensorRec> tensors_;
  std::map<std::string, std::vector<std::uint8_t>> storage_bytes_;  // key -> bytes, read once per key
  std::map<std::string, std::pair<std::string, std::int64_t>> storage_kind_;  // key -> (dtype, numel)

  template <class... Args>
  [[noreturn]] void fail(std::size_t at, Args&&... msg) const {
    throw Error(mint::detail::concat(where_, "data.pkl at byte ", at, ": ", std::forward<Args>(msg)...));
  }
  void need(std::size_t n, std::size_t at) const {
    if (n > p_.size() - pos_) fail(at, "the pickle ends inside an opcode argument (truncated data.pkl)");
  }
  std::uint64_t read_le(int n, std::size_t at) {
    need(static_cast<std::size_t>(n), at);
    const std::uint64_t v = load_le(p_.data() + pos_, n);
    pos_ += static_cast<std::size_t>(n);
    return v;
  }
  std::string read_bytes(std::uint64_t n, std::size_t at) {
    if (n > p_.size() - pos_) fail(at, "a string of ", n, " bytes runs past the end of the pickle");
    std::string s(reinterpret_cast<const char*>(p_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  std::string read_line(std::size_t at) {
    const auto* begin = p_.data() + pos_;
    const auto* end = static_cast<const std::uint8_t*>(std::memchr(begin, '\n', p_.size() - pos_));
    if (end == nullptr) fail(at, "a GLOBAL name has no terminating newline");
    std::string s(reinterpret_cast<const char*>(begin), static_cast<std::size_t>(end - begin));
    pos_ += s.size() + 1;
    return s;
  }

  PickleValue str(std::string s) {
    strings_.push_back(std::move(s));
    return {Kind::Str, 0, 0.0, strings_.size() - 1};
  }
  PickleValue make_int(std::int64_t v) { return {Kind::Int, v, 0.0, 0}; }
  PickleValue container(Kind kind, std::vector<PickleValue> items, std::size_t at) {
    containers_.push_back({kind, {}, 1});
    const std::size_t id = containers_.size() - 1;
    for (const auto& v : items) add_item(id, v, at);
    return {kind, 0, 0.0, id};
  }
  int depth_of(const PickleValue& v) const {
    const bool nested = v.kind == Kind::Tuple || v.kind == Kind::List || v.kind == Kind::Dict;
    return nested ? containers_[v.ref].depth : 0;
  }
  void add_item(std::size_t id, const PickleValue& v, std::size_t at) {
    Container& c = containers_[id];
    c.depth = std::max(c.depth, depth_of(v) + 1);
    if (c.depth > kPickleMaxDepth) fail(at, "containers nest deeper than ", kPickleMaxDepth, " levels");
    c.items.push_back(v);
  }

  PickleValue pop(std::size_t at) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back()))
      fail(at, "an opcode pops from an empty stack");
    PickleValue v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleValue& top(std::size_t at) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() == marks_.back())) fail(at, "an opcode needs a value");
    return stack_.back();
  }
  std::vector<PickleValue> pop_to_mark(std::size_t at) {
    if (marks_.empty()) fail(at, "an opcode needs a MARK but there is none");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  // The container under the stack top, for APPEND(S) / SETITEM(S); it must be of `kind`.
  std::size_t target(Kind kind, const char* op, std::size_t at) {
    const PickleValue& v = top(at);
    if (v.kind != kind) fail(at, op, " applies to a ", pickle_kind_name(kind), ", not a ", pickle_kind_name(v.kind));
    return v.ref;
  }
  const std::string& string_of(const PickleValue& v, const char* what, std::size_t at) const {
    if (v.kind != Kind::Str) fail(at, what, " must be a str, got a ", pickle_kind_name(v.kind));
    return strings_[v.ref];
  }
  std::int64_t int_of(const PickleValue& v, const char* what, std::size_t at) const {
    if (v.kind != Kind::Int) fail(at, what, " must be an int, got a ", pickle_kind_name(v.kind));
    return v.i;
  }
  const std::vector<PickleValue>& tuple_of(const PickleValue& v, const char* what, std::size_t at) const {
    if (v.kind != Kind::Tuple) fail(at, what, " must be a tuple, got a ", pickle_kind_name(v.kind));
    return containers_[v.ref].items;
  }

  // GLOBAL module name: only the weights_only allow-list.
  PickleValue global(const std::string& module, const std::string& name, std::size_t at) {
    const std::string full = module + "." + name;
    const bool allowed = full == "collections.OrderedDict" || full == "torch._utils._rebuild_tensor_v2" ||
                         full == "torch._utils._rebuild_tensor" || full == "torch._utils._rebuild_parameter" ||
                         (module == "torch" && torch_storage_dtype(name) != nullptr);
    if (!allowed)
      fail(at, "refusing the global '", full,
           "': a checkpoint may only name collections.OrderedDict, torch._utils._rebuild_tensor_v2 / "
           "_rebuild_tensor / _rebuild_parameter and torch.<Float|Half|BFloat16|Double|Long|Int|Short|Char|Byte|"
           "Bool>Storage (the torch.load(weights_only=True) rule); nothing in the file was executed");
    strings_.push_back(full);
    return {Kind::Global, 0, 0.0, strings_.size() - 1};
  }

  // BINPERSID: ('storage', torch.<T>Storage, key, location, numel).
  PickleValue persistent_load(const PickleValue& pid, std::size_t at) {
    const auto& t = tuple_of(pid, "a persistent id", at);
    if (t.size() != 5) fail(at, "a persistent id must be ('storage', type, key, location, numel), got ", t.size(),
                            " fields");
    if (string_of(t[0], "persistent id field 0", at) != "storage")
      fail(at, "persistent id kind '", strings_[t[0].ref], "' is not 'storage'");
    if (t[1].kind != Kind::Global) fail(at, "a storage type must be a torch.<T>Storage global");
    const std::string& type = strings_[t[1].ref];
    const char* dtype = type.rfind("torch.", 0) == 0 ? torch_storage_dtype(type.substr(6)) : nullptr;
    if (dtype == nullptr) fail(at, "'", type, "' is not a storage type");
    const std::string key = string_of(t[2], "a storage key", at);
    (void)string_of(t[3], "a storage location", at);
    const std::int64_t numel = int_of(t[4], "a storage size", at);
    if (numel < 0) fail(at, "storage '", key, "' has a negative size ", numel);
    const auto [it, fresh] = storage_kind_.emplace(key, std::make_pair(std::string(dtype), numel));
    if (!fresh && (it->second.first != dtype || it->second.second != numel))
      fail(at, "storage '", key, "' appears as ", it->second.second, " x ", it->second.first, " and as ", numel, " x ",
           dtype);
    storages_.push_back({key, dtype, numel});
    return {Kind::Storage, 0, 0.0, storages_.size() - 1};
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, ...): a contiguous float32 copy of the view.
  PickleValue rebuild_tensor(const std::vector<PickleValue>& args, std::size_t at) {
    if (args.size() < 4) fail(at, "_rebuild_tensor needs (storage, offset, size, stride, ...), got ", args.size(),
                              " arguments");
    if (args[0].kind != Kind::Storage) fail(at, "_rebuild_tensor's first argument is a ",
                                            pickle_kind_name(args[0].kind), ", not a storage");
    const StorageRec& s = storages_[args[0].ref];
    const std::int64_t offset = int_of(args[1], "a storage offset", at);
    const auto& size = tuple_of(args[2], "a tensor size", at);
    const auto& stride = tuple_of(args[3], "a tensor stride", at);
    const std::string what = "tensor view of storage '" + s.key + "'";
    if (size.size() != stride.size())
      fail(at, what, ": size has ", size.size(), " dimensions but stride ", stride.size());
    if (size.size() > static_cast<std::size_t>(Shape::kMaxRank))
      fail(at, what, ": rank ", size.size(), " exceeds mint's maximum rank ", Shape::kMaxRank);
    if (offset < 0) fail(at, what, ": negative storage offset ", offset);
    Shape shape;
    std::vector<std::int64_t> strides;
    std::int64_t numel = 1, last = offset;  // `last`: the largest element index the view touches
    for (std::size_t d = 0; d < size.size(); ++d) {
      const std::int64_t n = int_of(size[d], "a tensor size entry", at);
      const std::int64_t st = int_of(stride[d], "a tensor stride entry", at);
      if (n < 0) fail(at, what, ": negative size ", n, " in dimension ", d);
      if (st < 0) fail(at, what, ": negative stride ", st, " in dimension ", d, " (torch.save never writes one)");
      if (!checked_mul(numel, n, numel)) fail(at, what, ": element count overflows int64");
      std::int64_t reach = 0;
      if (n > 0 && (!checked_mul(n - 1, st, reach) || reach > std::numeric_limits<std::int64_t>::max() - last))
        fail(at, what, ": size x stride overflows int64");
      last += n > 0 ? reach : 0;
      shape.push_back(n);
      strides.push_back(st);
    }
    if (numel > 0 && last >= s.numel)
      fail(at, what, ": offset ", offset, ", size ", shape.str(), " reaches element ", last, " but the storage has ",
           s.numel, " elements");
    std::int64_t out_bytes = 0;
    if (!checked_mul(numel, static_cast<std::int64_t>(sizeof(float)), out_bytes))
      fail(at, what, ": byte count overflows int64");
    budget_.take(static_cast<std::uint64_t>(out_bytes), what + " " + shape.str());

    auto it = storage_bytes_.find(s.key);
    if (it == storage_bytes_.end()) it = storage_bytes_.emplace(s.key, loader_(ctx_, s.key, s.dtype, s.numel)).first;
    const std::uint8_t* src = it->second.data();
    const auto elem = static_cast<std::int64_t>(safetensors_dtype_size(s.dtype));

    Tensor<Cpu> t = Tensor<Cpu>::empty(shape);
    if (numel > 0) {
      // Rows along the last dimension; contiguous rows convert in one call.
      const std::size_t rank = strides.size();
      const std::int64_t inner = rank ? shape[static_cast<int>(rank - 1)] : 1;
      const std::int64_t inner_stride = rank ? strides[rank - 1] : 1;
      std::vector<std::int64_t> idx(rank, 0);
      float* dst = t.data();
      for (std::int64_t row = 0; row < numel / inner; ++row) {
        std::int64_t base = offset;
        for (std::size_t d = 0; d + 1 < rank; ++d) base += idx[d] * strides[d];
        if (inner_stride == 1) {
          convert_to_f32(s.dtype, src + base * elem, dst, inner);
        } else {
          for (std::int64_t j = 0; j < inner; ++j)
            convert_to_f32(s.dtype, src + (base + j * inner_stride) * elem, dst + j, 1);
        }
        dst += inner;
        for (std::size_t d = rank >= 2 ? rank - 1 : 0; d-- > 0;) {  // odometer over the outer dimensions
          if (++idx[d] < shape[static_cast<int>(d)]) break;
          idx[d] = 0;
        }
      }
    }
    tensors_.push_back({std::move(t), s.dtype});
    return {Kind::Tensor, 0, 0.0, tensors_.size() - 1};
  }

  PickleValue reduce(const PickleValue& fn, const PickleValue& args, std::size_t at) {
    if (fn.kind != Kind::Global) fail(at, "REDUCE calls a ", pickle_kind_name(fn.kind), ", not a global");
    const std::string& name = strings_[fn.ref];
    const auto& a = tuple_of(args, "REDUCE's arguments", at);
    if (name == "collections.OrderedDict") {
      if (!a.empty()) fail(at, "OrderedDict is only rebuilt empty here, got ", a.size(), " arguments");
      return container(Kind::Dict, {}, at);
    }
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor")
      return rebuild_tensor(a, at);
    if (name == "torch._utils._rebuild_parameter") {
      if (a.empty() || a[0].kind != Kind::Tensor) fail(at, "_rebuild_parameter needs a tensor as first argument");
      return a[0];
    }
    fail(at, "'", name, "' cannot be called");
  }

  PickleValue execute() {
    while (true) {
      const std::size_t at = pos_;
      need(1, at);
      const std::uint8_t op = p_[pos_++];
      switch (op) {
        case 0x80: {  // PROTO
          const auto v = read_le(1, at);
          if (v < 2 || v > 5) fail(at, "pickle protocol ", v, " (torch.save writes 2; mint reads 2 to 5)");
          break;
        }
        case 0x95: (void)read_le(8, at); break;  // FRAME: a length hint only
        case '.': {                              // STOP
          if (stack_.size() != 1 || !marks_.empty()) fail(at, "STOP with ", stack_.size(), " values on the stack");
          return stack_.back();
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '0': (void)pop(at); break;
        case '1': (void)pop_to_mark(at); break;
        case '2': stack_.push_back(top(at)); break;
        case 'N': stack_.push_back({}); break;
        case 0x88: stack_.push_back({Kind::Bool, 1, 0.0, 0}); break;
        case 0x89: stack_.push_back({Kind::Bool, 0, 0.0, 0}); break;
        case 'J': stack_.push_back(make_int(static_cast<std::int32_t>(read_le(4, at)))); break;
        case 'K': stack_.push_back(make_int(static_cast<std::int64_t>(read_le(1, at)))); break;
        case 'M': stack_.push_back(make_int(static_cast<std::int64_t>(read_le(2, at)))); break;
        case 0x8a: {  // LONG1: n-byte two's complement little-endian
          const auto n = static_cast<int>(read_le(1, at));
          if (n > 8) fail(at, "an integer of ", n, " bytes does not fit in int64");
          std::uint64_t v = n ? read_le(n, at) : 0;
          if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
          stack_.push_back(make_int(static_cast<std::int64_t>(v)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          need(8, at);
          std::uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | p_[pos_ + static_cast<std::size_t>(k)];
          pos_ += 8;
          stack_.push_back({Kind::Float, 0, std::bit_cast<double>(bits), 0});
          break;
        }
        case 'X': case 'B': case 'T': stack_.push_back(str(read_bytes(read_le(4, at), at))); break;
        case 0x8c: case 'C': case 'U': stack_.push_back(str(read_bytes(read_le(1, at), at))); break;
        case 0x8d: case 0x8e: stack_.push_back(str(read_bytes(read_le(8, at), at))); break;
        case 'c': {
          const std::string module = read_line(at);
          const std::string name = read_line(at);
          stack_.push_back(global(module, name, at));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const PickleValue name = pop(at), module = pop(at);
          const std::string n = string_of(name, "STACK_GLOBAL's name", at);
          stack_.push_back(global(string_of(module, "STACK_GLOBAL's module", at), n, at));
          break;
        }
        case ')': stack_.push_back(container(Kind::Tuple, {}, at)); break;
        case 't': stack_.push_back(container(Kind::Tuple, pop_to_mark(at), at)); break;
        case 0x85: case 0x86: case 0x87: {
          std::vector<PickleValue> items(static_cast<std::size_t>(op - 0x84));
          for (auto i = items.size(); i-- > 0;) items[i] = pop(at);
          stack_.push_back(container(Kind::Tuple, std::move(items), at));
          break;
        }
        case ']': stack_.push_back(container(Kind::List, {}, at)); break;
        case 'l': stack_.push_back(container(Kind::List, pop_to_mark(at), at)); break;
        case '}': stack_.push_back(container(Kind::Dict, {}, at)); break;
        case 'd': {
          auto items = pop_to_mark(at);
          if (items.size() % 2) fail(at, "DICT with an odd number of items");
          stack_.push_back(container(Kind::Dict, std::move(items), at));
          break;
        }
        case 'a': {
          const PickleValue v = pop(at);
          const std::size_t id = target(Kind::List, "APPEND", at);
          add_item(id, v, at);
          break;
        }
        case 'e': {
          const auto items = pop_to_mark(at);
          const std::size_t id = target(Kind::List, "APPENDS", at);
          for (const auto& v : items) add_item(id, v, at);
          break;
        }
        case 's': {
          const PickleValue v = pop(at), k = pop(at);
          const std::size_t id = target(Kind::Dict, "SETITEM", at);
          add_item(id, k, at);
          add_item(id, v, at);
          break;
        }
        case 'u': {
          const auto items = pop_to_mark(at);
          if (items.size() % 2) fail(at, "SETITEMS with an odd number of items");
          const std::size_t id = target(Kind::Dict, "SETITEMS", at);
          for (const auto& v : items) add_item(id, v, at);
          break;
        }
        case 'q': memo_[read_le(1, at)] = top(at); break;
        case 'r': memo_[read_le(4, at)] = top(at); break;
        case 0x94: {
          const std::uint64_t key = memo_.size();
          memo_[key] = top(at);
          break;
        }
        case 'h': case 'j': {
          const std::uint64_t key = read_le(op == 'h' ? 1 : 4, at);
          const auto it = memo_.find(key);
          if (it == memo_.end()) fail(at, "memo entry ", key, " is read before it is written");
          stack_.push_back(it->second);
          break;
        }
        case 'Q': {
          const PickleValue pid = pop(at);
          stack_.push_back(persistent_load(pid, at));
          break;
        }
        case 'R': {
          const PickleValue args = pop(at), fn = pop(at);
          stack_.push_back(reduce(fn, args, at));
          break;
        }
        case 'b': {  // BUILD: OrderedDict's attribute state (state_dict()._metadata) is dropped
          (void)pop(at);
          if (top(at).kind != Kind::Dict) fail(at, "BUILD applies to a ", pickle_kind_name(top(at).kind),
                                               "; only an OrderedDict's attributes are accepted");
          break;
        }
        default:
          fail(at, "opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15],
               " is not one torch.save writes for tensors (unsupported pickle content)");
      }
    }
  }

  void flatten(const PickleValue& v, const std::string& path, int depth, std::size_t& visits, std::size_t max_visits,
               PytorchFile& out) const {
    if (++visits > max_visits)
      throw Error(mint::detail::concat(where_, "the object tree expands to more than ", max_visits,
                                       " nodes (containers shared many times over)"));
    if (depth > kPickleMaxDepth)
      throw Error(mint::detail::concat(where_, "containers nest deeper than ", kPickleMaxDepth,
                                       " levels (or contain themselves)"));
    auto child = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
    switch (v.kind) {
      case Kind::Tensor: {
        const bool fresh = out.tensors.emplace(path, tensors_[v.ref].t).second;
        if (!fresh) throw Error(mint::detail::concat(where_, "two tensors have the same name '", path, "'"));
        out.dtypes.emplace(path, tensors_[v.ref].dtype);
        break;
      }
      case Kind::Tuple:
      case Kind::List: {
        const auto& items = containers_[v.ref].items;
        for (std::size_t i = 0; i < items.size(); ++i)
          flatten(items[i], child(std::to_string(i)), depth + 1, visits, max_visits, out);
        break;
      }
      case Kind::Dict: {
        const auto& items = containers_[v.ref].items;
        for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
          const PickleValue& k = items[i];
          std::string key;
          if (k.kind == Kind::Str) {
            key = strings_[k.ref];
          } else if (k.kind == Kind::Int) {
            key = std::to_string(k.i);
          } else {
            throw Error(mint::detail::concat(where_, "a dict key under '", path, "' is a ", pickle_kind_name(k.kind),
                                             "; only str and int keys are read"));
          }
          flatten(items[i + 1], child(key), depth + 1, visits, max_visits, out);
        }
        break;
      }
      default: break;  // numbers, strings, None: not tensors
    }
  }
};

// The archive's record folder: the unique "<dir>/data.pkl" at depth one.
inline std::string pytorch_archive_dir(const std::vector<std::string>& names, const std::string& where) {
  std::string dir;
  for (const auto& n : names) {
    const auto slash = n.find('/');
    if (slash == std::string::npos || n.substr(slash) != "/data.pkl") continue;
    check(dir.empty(), where, "two pickles '", dir, "/data.pkl' and '", n, "' in one archive");
    dir = n.substr(0, slash);
  }
  for (const auto& n : names)
    check(n.find("/constants.pkl") == std::string::npos && n.rfind("code/", 0) != 0 &&
              n.find("/code/") == std::string::npos,
          where, "this is a TorchScript archive (torch.jit.save, record '", n,
          "'), not a torch.save checkpoint: save the model's state_dict() with torch.save instead");
  check(!dir.empty(), where, "the zip archive has no '<name>/data.pkl' record, so it is not a torch.save checkpoint");
  return dir;
}

struct PytorchStorageContext {
  const ZipReader* zip;
  std::string dir, where;
  ByteBudget* budget;
};

inline std::vector<std::uint8_t> load_pytorch_storage(void* ctx, const std::string& key, const char* dtype,
                                                      std::int64_t numel) {
  const auto& c = *static_cast<const PytorchStorageContext*>(ctx);
  const std::string record = c.dir + "/data/" + key;
  check(c.zip->contains(record), c.where, "storage '", key, "' has no record '", record, "' in the archive");
  std::int64_t bytes = 0;
  check(checked_mul(numel, static_cast<std::int64_t>(safetensors_dtype_size(dtype)), bytes), c.where, "storage '", key,
        "' of ", numel, " x ", dtype, ": byte count overflows int64");
  const std::uint64_t have = c.zip->size_of(record);
  check(have == static_cast<std::uint64_t>(bytes), c.where, "storage '", key, "' declares ", numel, " elements of ",
        dtype, " (", bytes, " bytes) but its record '", record, "' holds ", have, " bytes");
  return c.zip->read(record, *c.budget);
}

// The reader behind parse_pytorch and load_pytorch: `src` is consumed (libzip frees it).
inline PytorchFile read_pytorch_zip(zip_source_t* src, std::uint64_t file_size, const std::string& source) {
  const std::string where = "pytorch: " + source + ": ";
  ByteBudget budget{kPytorchExpansion * file_size + (std::uint64_t{1} << 20), where};
  const ZipReader zip(src, where);
  const auto names = zip.names();
  const std::string dir = pytorch_archive_dir(names, where);
  if (zip.contains(dir + "/byteorder")) {
    const auto order = zip.read(dir + "/byteorder", budget);
    const std::string text(order.begin(), order.end());
    check(text == "little", where, "byte order '", text.substr(0, 16), "': mint reads little-endian checkpoints only");
  }
  const auto pickle = zip.read(dir + "/data.pkl", budget);
  PytorchStorageContext ctx{&zip, dir, where, &budget};
  PickleMachine machine(pickle, where, budget, &ctx, &load_pytorch_storage);
  PytorchFile file = machine.run();
  file.source = source;
  return file;
}

// Refuses the formats torch.save wrote before the zip container, by their first bytes.
inline void check_not_legacy_pytorch(const std::uint8_t* head, std::size_t n, const std::string& source) {
  const bool zip = n >= 4 && head[0] == 'P' && head[1] == 'K';
  const bool pickle = n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5;
  check(zip || !pickle, "pytorch: ", source,
        ": this is the legacy (pre-1.6, non-zip) torch.save format, which mint does not read; re-save it with "
        "PyTorch >= 1.6: torch.save(torch.load(path, weights_only=True), path)");
}

}  // namespace detail

inline const Tensor<Cpu>& PytorchFile::at(const std::string& name) const {
  return detail::named_tensor(tensors, name, "pytorch", source);
}

// Parses a torch.save checkpoint held in memory. `source` names it in error messages. Throws mint::Error on any
// malformed or refused input; never reads outside [bytes, bytes + size) and never executes anything.
inline PytorchFile parse_pytorch(const std::uint8_t* bytes, std::size_t size, const std::string& source) {
  detail::check_not_legacy_pytorch(bytes, size, source);
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(size ? bytes : nullptr, size, 0, &err);
  const std::string msg = src ? "" : zip_error_strerror(&err);
  zip_error_fini(&err);
  check(src != nullptr, "pytorch: ", source, ": cannot open the buffer: ", msg);
  return detail::read_pytorch_zip(src, size, source);
}

// Reads the torch.save checkpoint at `path` (.pth, .pt, .bin). Throws mint::Error naming the path.
inline PytorchFile load_pytorch(const std::string& path) {
  std::error_code ec;  // file_size fails for a missing path and for anything but a regular file
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  check(!ec, "pytorch: cannot open '", path, "': ", ec.message());
  std::uint8_t head[4] = {0, 0, 0, 0};
  {
    std::ifstream in(path, std::ios::binary);
    check(in.is_open(), "pytorch: cannot open '", path, "' for reading");
    in.read(reinterpret_cast<char*>(head), 4);
  }
  detail::check_not_legacy_pytorch(head, std::min<std::uintmax_t>(size, 4), path);
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_file_create(path.c_str(), 0, -1, &err);
  const std::string msg = src ? "" : zip_error_strerror(&err);
  zip_error_fini(&err);
  check(src != nullptr, "pytorch: cannot open '", path, "': ", msg);
  return detail::read_pytorch_zip(src, size, path);
}

}  // namespace mint::io

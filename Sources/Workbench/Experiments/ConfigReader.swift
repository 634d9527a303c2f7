import Foundation
import Yams

/// A problem with an experiment file: names the file, the key path and the line.
public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let keyPath: String
    public let line: Int?
    public let message: String

    public init(file: String, keyPath: String, line: Int?, message: String) {
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Reads a YAML experiment file strictly: every key must be one the code asks for, every value
/// of the expected type and range. It records every key asked for (with its effective value,
/// default or not), which gives the resolved config and the list of documented keys.
public final class ConfigReader {
    public let file: String
    let root: Node.Mapping
    /// Keys set by `--set`, which have no line in the file.
    let overridden: Set<String>
    /// The file each key path came from when it is not `file` (keys inherited through `base:`).
    var origins: [String: String] = [:]
    /// (key path, YAML text of the effective value), in the order read.
    public private(set) var resolved: [(path: String, yaml: String)] = []

    /// Reads experiment YAML; `marks`, when given, is the already composed mapping to use (so that
    /// merged files keep each node's line in its own file).
    public init(yaml: String, file: String, overrides: [String] = [], marks: Node.Mapping? = nil) throws {
        self.file = file
        let node: Node?
        if let marks {
            node = .mapping(marks)
        } else {
            do {
                node = try Yams.compose(yaml: yaml)
            } catch let error as YamlError {
                throw ConfigError(file: file, keyPath: "", line: ConfigReader.line(of: error), message: "not valid YAML: \(error)")
            }
        }
        guard var mapping = node?.mapping ?? (node == nil ? Node.Mapping([]) : nil) else {
            throw ConfigError(file: file, keyPath: "", line: node?.mark?.line, message: "the top level must be a mapping of keys to values")
        }
        var set = Set<String>()
        for override in overrides {
            guard let equals = override.firstIndex(of: "="), equals != override.startIndex else {
                throw ConfigError(file: file, keyPath: override, line: nil, message: "--set needs key.path=value")
            }
            let path = String(override[..<equals]), text = String(override[override.index(after: equals)...])
            let value = (try? Yams.compose(yaml: text)) ?? nil ?? Node(text)
            try ConfigReader.assign(value, at: path.split(separator: ".").map(String.init), in: &mapping, file: file)
            set.insert(path)
        }
        root = mapping
        overridden = set
    }

    /// Reads `url`; a top-level `base: other.yaml` (relative to the file) merges that file under this
    /// one's keys, recursively (mappings merge key by key; anything else is replaced). `chain` holds
    /// the files that inherit from this one, to reject cycles.
    public convenience init(contentsOf url: URL, overrides: [String] = [], chain: [String] = []) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw ConfigError(file: url.path, keyPath: "", line: nil, message: "no such experiment file; the shipped ones are in Experiments/")
        }
        if isFolder.boolValue {
            throw ConfigError(file: url.path, keyPath: "", line: nil, message: "is a folder; give an experiment file (YAML) such as Experiments/voc2007-quick.yaml")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ConfigError(file: url.path, keyPath: "", line: nil, message: "cannot read the file (\(error.localizedDescription)); check its permissions")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: url.path, keyPath: "", line: ConfigReader.firstNonUTF8Line(data),
                              message: "is not UTF-8 text (this line has bytes that are not UTF-8); save the file as UTF-8")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: url.path, keyPath: "", line: ConfigReader.line(of: error), message: "not valid YAML: \(error)")
        }
        guard let baseNode = node?.mapping?["base"] else {
            try self.init(yaml: text, file: url.path, overrides: overrides)
            return
        }
        guard let baseName = baseNode.scalar?.string else {
            throw ConfigError(file: url.path, keyPath: "base", line: baseNode.mark?.line, message: "expected the path of the base experiment file, e.g. base: voc2007.yaml")
        }
        let baseURL = URL(fileURLWithPath: (baseName as NSString).expandingTildeInPath, relativeTo: url.deletingLastPathComponent()).standardizedFileURL
        let path = url.standardizedFileURL.path
        if (chain + [path]).contains(baseURL.path) {
            throw ConfigError(file: url.path, keyPath: "base", line: baseNode.mark?.line,
                              message: "inheritance cycle: \((chain + [path, baseURL.path]).joined(separator: " → ")); a file cannot be its own base")
        }
        guard FileManager.default.fileExists(atPath: baseURL.path) else {
            throw ConfigError(file: url.path, keyPath: "base", line: baseNode.mark?.line,
                              message: "no base experiment at \(baseURL.path) (paths are relative to this file's folder)")
        }
        let base = try ConfigReader(contentsOf: baseURL, chain: chain + [path])
        var own = node!.mapping!
        own["base"] = nil
        var origins = base.origins
        let merged = ConfigReader.merge(base.root, under: own, prefix: "", baseFile: base.file, origins: &origins)
        try self.init(yaml: "", file: url.path, overrides: overrides, marks: merged)
        self.origins = origins
    }

    /// `own`'s keys over `base`'s, mappings merged key by key; records in `origins` the key paths
    /// that came from `baseFile` (unless already known from further up the chain).
    static func merge(_ base: Node.Mapping, under own: Node.Mapping, prefix: String, baseFile: String,
                      origins: inout [String: String]) -> Node.Mapping {
        var result = base
        for (key, _) in base {
            guard let name = key.string else { continue }
            let path = prefix.isEmpty ? name : prefix + "." + name
            if origins[path] == nil { origins[path] = baseFile }
        }
        for (key, value) in own {
            guard let name = key.string else { result[key] = value; continue }
            let path = prefix.isEmpty ? name : prefix + "." + name
            if let baseMapping = base[name]?.mapping, let ownMapping = value.mapping {
                var inner = origins
                result[name] = .mapping(merge(baseMapping, under: ownMapping, prefix: path, baseFile: baseFile, origins: &inner))
                origins = inner
                origins[path] = nil
            } else {
                result[name] = value
                for known in origins.keys where known == path || known.hasPrefix(path + ".") { origins[known] = nil }
            }
        }
        return result
    }

    /// The file that defined `path` (a base file for inherited keys).
    func origin(of path: String) -> String {
        var candidate = path
        while true {
            if let file = origins[candidate] { return file }
            guard let dot = candidate.lastIndex(of: ".") else { return file }
            candidate = String(candidate[..<dot])
        }
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    static func assign(_ value: Node, at path: [String], in mapping: inout Node.Mapping, file: String) throws {
        guard let key = path.first, !key.isEmpty else {
            throw ConfigError(file: file, keyPath: path.joined(separator: "."), line: nil, message: "empty key in --set")
        }
        if path.count == 1 {
            mapping[key] = value
            return
        }
        var child = mapping[key]?.mapping ?? Node.Mapping([])
        if let existing = mapping[key], existing.mapping == nil, existing.null == nil {
            throw ConfigError(file: file, keyPath: key, line: existing.mark?.line, message: "--set \(path.joined(separator: ".")) needs \(key) to be a mapping")
        }
        try assign(value, at: Array(path.dropFirst()), in: &child, file: file)
        mapping[key] = .mapping(child)
    }

    /// The top-level section.
    /// A config's keys as paths and values ("train.lr" → "0.001"), read with the YAML parser; lists
    /// and mappings inside lists are rendered in flow style. Unparsable text gives no keys.
    public static func flattened(yaml: String) -> [String: String] {
        func render(_ node: Node) -> String {
            if let scalar = node.scalar { return scalar.string }
            if let sequence = node.sequence { return "[" + sequence.map(render).joined(separator: ", ") + "]" }
            if let mapping = node.mapping { return "{" + mapping.map { "\(render($0.key)): \(render($0.value))" }.joined(separator: ", ") + "}" }
            return ""
        }
        var result: [String: String] = [:]
        func walk(_ mapping: Node.Mapping, _ prefix: String) {
            for (key, value) in mapping {
                guard let name = key.string else { continue }
                let path = prefix.isEmpty ? name : prefix + "." + name
                if let inner = value.mapping { walk(inner, path) } else { result[path] = render(value) }
            }
        }
        if let root = (try? Yams.compose(yaml: yaml))??.mapping { walk(root, "") }
        return result
    }

    /// The 1-based number of the first line that is not valid UTF-8 (a newline byte never occurs
    /// inside a multi-byte character, so lines can be checked one by one).
    static func firstNonUTF8Line(_ data: Data) -> Int {
        for (index, line) in data.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated()
        where String(data: Data(line), encoding: .utf8) == nil {
            return index + 1
        }
        return 1
    }

    public func top() throws -> ConfigSection { try ConfigSection(reader: self, prefix: "", mapping: root, line: nil) }

    func record(_ path: String, _ yaml: String) { resolved.append((path, yaml)) }

    /// The resolved config as YAML (every key the code read, defaults included), grouped by
    /// section in the order sections were first read.
    public var resolvedYAML: String {
        final class Node {
            var order: [String] = []
            var children: [String: Node] = [:]
            var values: [String: String] = [:]
        }
        let root = Node()
        for (path, yaml) in resolved {
            let parts = path.split(separator: ".").map(String.init)
            var node = root
            for part in parts.dropLast() {
                if node.children[part] == nil {
                    node.children[part] = Node()
                    node.order.append(part)
                }
                node = node.children[part]!
            }
            if node.values[parts.last!] == nil && node.children[parts.last!] == nil { node.order.append(parts.last!) }
            node.values[parts.last!] = yaml
        }
        var lines: [String] = []
        func emit(_ node: Node, depth: Int) {
            for key in node.order {
                let indent = String(repeating: "  ", count: depth)
                if let child = node.children[key] {
                    lines.append(indent + key + ":")
                    emit(child, depth: depth + 1)
                } else if let value = node.values[key] {
                    lines.append(indent + key + ": " + value)
                }
            }
        }
        emit(root, depth: 0)
        return lines.joined(separator: "\n") + "\n"
    }
}

/// One mapping of an experiment file; typed getters consume keys, `finish()` rejects the rest.
public final class ConfigSection {
    let reader: ConfigReader
    let prefix: String
    let mapping: Node.Mapping
    let line: Int?
    private var consumed: Set<String> = []
    private var known: [String] = []

    init(reader: ConfigReader, prefix: String, mapping: Node.Mapping, line: Int?) throws {
        self.reader = reader
        self.prefix = prefix
        self.mapping = mapping
        self.line = line
        var seen: [String: Int?] = [:]
        for (key, value) in mapping {
            guard let name = key.string else {
                throw ConfigError(file: reader.file, keyPath: prefix, line: key.mark?.line, message: "keys must be plain names")
            }
            if let first = seen[name] {
                throw ConfigError(file: reader.file, keyPath: path(name), line: value.mark?.line ?? key.mark?.line,
                                  message: "appears twice (first on line \(first.map(String.init) ?? "?"))")
            }
            seen[name] = key.mark?.line
        }
    }

    func path(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }

    /// The resolved values of a list item, which its list records as one flow-style value
    /// (nil: values go straight to the reader).
    var captured: [(key: String, yaml: String)]?

    func record(_ key: String, _ yaml: String) {
        if captured != nil { captured!.append((key, yaml)) } else { reader.record(path(key), yaml) }
    }

    /// Records `key`'s resolved value as given YAML (for values read by other means, e.g. lists of mappings).
    public func recordResolved(_ key: String, _ yaml: String) {
        known.append(key)
        consumed.insert(key)
        record(key, yaml)
    }

    /// A list of mappings, e.g. `[{type: ce, weight: 1.0}, {type: dice, weight: 3.0}]`, as one section
    /// per item (named `key[i]` in errors); nil when absent. Record the list with `recordList`.
    public func mappingList(_ key: String, example: String) throws -> [ConfigSection]? {
        guard let value = node(key) else { return nil }
        guard let items = value.sequence else { throw error(key, "expected a list such as \(example)") }
        if items.count == 0 { throw error(key, "is empty; give at least one entry such as \(example)") }
        return try items.enumerated().map { index, item in
            guard let mapping = item.mapping else { throw error(key, "entry \(index + 1) is not a mapping; expected entries such as \(example)") }
            let section = try ConfigSection(reader: reader, prefix: path(key) + "[\(index)]", mapping: mapping, line: item.mark?.line ?? lineOf(key))
            section.captured = []
            return section
        }
    }

    /// Records a list read with `mappingList` (after its items were read and finished) as flow YAML.
    public func recordList(_ key: String, _ items: [ConfigSection]) {
        record(key, "[" + items.map { item in
            // Options left unset are left out, so the list reads back to the same text.
            "{" + (item.captured ?? []).filter { $0.yaml != "null" }.map { "\($0.key): \($0.yaml)" }.joined(separator: ", ") + "}"
        }.joined(separator: ", ") + "]")
    }

    /// A list of numbers, e.g. `[0.5, 1.0, 2.0]`; nil when absent and no default.
    public func optionalDoubleList(_ key: String, default value: [Double]? = nil, min: Double? = nil, exclusiveMin: Bool = false) throws -> [Double]? {
        var result = value
        if let node = node(key) {
            guard let items = node.sequence else { throw error(key, "expected a list of numbers such as [0.5, 1.0]") }
            result = try items.map { item in
                guard let text = item.scalar?.string, let number = Double(text), number.isFinite else {
                    throw error(key, "expected a list of numbers, found '\(item.scalar?.string ?? "a nested value")'")
                }
                if let min, exclusiveMin ? number <= min : number < min {
                    throw error(key, "every entry must be \(exclusiveMin ? "above" : "at least") \(ConfigSection.format(min)), found \(number)")
                }
                return number
            }
        }
        record(key, result.map { "[" + $0.map { ConfigSection.format($0) }.joined(separator: ", ") + "]" } ?? "null")
        return result
    }

    /// A list of strings, e.g. `[background, cat, dog]`; nil when absent and no default.
    public func optionalStringList(_ key: String, default value: [String]? = nil) throws -> [String]? {
        var result = value
        if let node = node(key) {
            guard let items = node.sequence else { throw error(key, "expected a list of names such as [background, cat]") }
            result = try items.map { item in
                guard let text = item.scalar?.string else { throw error(key, "expected a list of names") }
                return text
            }
        }
        record(key, result.map { "[" + $0.map { ConfigSection.quote($0) }.joined(separator: ", ") + "]" } ?? "null")
        return result
    }

    func lineOf(_ key: String) -> Int? {
        if reader.overridden.contains(path(key)) { return nil }
        return mapping[key]?.mark?.line ?? line
    }

    public func error(_ key: String, _ message: String) -> ConfigError {
        let suffix = reader.overridden.contains(path(key)) ? " (set with --set)" : ""
        return ConfigError(file: reader.overridden.contains(path(key)) ? reader.file : reader.origin(of: path(key)), keyPath: path(key),
                           line: lineOf(key), message: message + suffix)
    }

    /// The raw node under `key`, or nil (null counts as absent).
    func node(_ key: String) -> Node? {
        known.append(key)
        consumed.insert(key)
        guard let value = mapping[key] else { return nil }
        if value.scalar != nil && value.null != nil { return nil }
        return value
    }

    func scalar(_ key: String, _ expected: String) throws -> String? {
        guard let value = node(key) else { return nil }
        guard let text = value.scalar?.string else { throw error(key, "expected \(expected), found a \(value.mapping != nil ? "mapping" : "list")") }
        return text
    }

    /// A sub-section (absent means empty: every key takes its default).
    public func section(_ key: String) throws -> ConfigSection {
        let value = node(key)
        if let value, value.mapping == nil {
            throw error(key, "expected a mapping of keys to values")
        }
        return try ConfigSection(reader: reader, prefix: path(key), mapping: value?.mapping ?? Node.Mapping([]),
                                 line: value?.mark?.line ?? line)
    }

    /// Whether the file has `key` (without consuming it).
    public func has(_ key: String) -> Bool { mapping[key] != nil }

    public func int(_ key: String, default value: Int, min: Int? = nil, max: Int? = nil) throws -> Int {
        try optionalInt(key, default: value, min: min, max: max, nullMeansNone: false)!
    }

    /// Whether the file sets `key` to null explicitly (which, for optional values, means "none").
    func isExplicitNull(_ key: String) -> Bool {
        guard let value = mapping[key], value.scalar != nil else { return false }
        return value.null != nil
    }

    /// An optional integer; an explicit `null` means none (unless `nullMeansNone` is false: then the default).
    public func optionalInt(_ key: String, default value: Int? = nil, min: Int? = nil, max: Int? = nil,
                            nullMeansNone: Bool = true) throws -> Int? {
        var result = nullMeansNone && isExplicitNull(key) ? nil : value
        if let text = try scalar(key, "an integer") {
            guard let parsed = Int(text.replacingOccurrences(of: "_", with: "")) else { throw error(key, "expected an integer, found '\(text)'") }
            result = parsed
        }
        if let result {
            if let min, result < min { throw error(key, "must be at least \(min), found \(result)") }
            if let max, result > max { throw error(key, "must be at most \(max), found \(result)") }
        }
        record(key, result.map(String.init) ?? "null")
        return result
    }

    public func double(_ key: String, default value: Double, min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false) throws -> Double {
        try optionalDouble(key, default: value, min: min, max: max, exclusiveMin: exclusiveMin, nullMeansNone: false)!
    }

    public func optionalDouble(_ key: String, default value: Double? = nil, min: Double? = nil, max: Double? = nil,
                               exclusiveMin: Bool = false, nullMeansNone: Bool = true) throws -> Double? {
        var result = nullMeansNone && isExplicitNull(key) ? nil : value
        if let text = try scalar(key, "a number") {
            guard let parsed = Double(text), parsed.isFinite else { throw error(key, "expected a number, found '\(text)'") }
            result = parsed
        }
        if let result {
            if let min, exclusiveMin ? result <= min : result < min {
                throw error(key, "must be \(exclusiveMin ? "above" : "at least") \(min), found \(result)")
            }
            if let max, result > max { throw error(key, "must be at most \(max), found \(result)") }
        }
        record(key, result.map { ConfigSection.format($0) } ?? "null")
        return result
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(format: "%.1f", value) }
        return "\(value)"
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        var result = value
        if let text = try scalar(key, "true or false") {
            switch text.lowercased() {
            case "true", "yes", "on": result = true
            case "false", "no", "off": result = false
            default: throw error(key, "expected true or false, found '\(text)'")
            }
        }
        record(key, result ? "true" : "false")
        return result
    }

    public func string(_ key: String, default value: String) throws -> String {
        try optionalString(key, default: value)!
    }

    public func optionalString(_ key: String, default value: String? = nil) throws -> String? {
        let result = try scalar(key, "a string") ?? value
        record(key, result.map { ConfigSection.quote($0) } ?? "null")
        return result
    }

    static func quote(_ text: String) -> String {
        let plain = text.range(of: "^[A-Za-z0-9_./+-][A-Za-z0-9_./+ -]*$", options: .regularExpression) != nil
            && !["true", "false", "yes", "no", "on", "off", "null"].contains(text.lowercased()) && Double(text) == nil
        return plain ? text : "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// One of a fixed set of names.
    public func choice<T: RawRepresentable & CaseIterable>(_ key: String, default value: T) throws -> T where T.RawValue == String {
        var result = value
        if let text = try scalar(key, "one of \(T.allCases.map(\.rawValue).joined(separator: ", "))") {
            guard let parsed = T(rawValue: text) else {
                throw error(key, "'\(text)' is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            result = parsed
        }
        record(key, result.rawValue)
        return result
    }

    /// A list of integers, e.g. `[1, 2, 2]`.
    public func intList(_ key: String, default value: [Int], min: Int? = nil) throws -> [Int] {
        var result = value
        if let node = node(key) {
            guard let items = node.sequence else { throw error(key, "expected a list such as [1, 2, 2]") }
            result = try items.map { item in
                guard let text = item.scalar?.string, let number = Int(text) else { throw error(key, "expected a list of integers") }
                if let min, number < min { throw error(key, "every entry must be at least \(min), found \(number)") }
                return number
            }
        }
        record(key, "[" + result.map(String.init).joined(separator: ", ") + "]")
        return result
    }

    /// Rejects any key of this mapping that no getter asked for.
    public func finish() throws {
        for (key, value) in mapping {
            guard let name = key.string, !consumed.contains(name) else { continue }
            let suggestion = ConfigSection.closest(name, in: known).map { " Did you mean '\($0)'?" } ?? ""
            let suffix = reader.overridden.contains(path(name)) ? " (set with --set)" : ""
            throw ConfigError(file: reader.overridden.contains(path(name)) ? reader.file : reader.origin(of: path(name)), keyPath: path(name),
                              line: reader.overridden.contains(path(name)) ? nil : (key.mark?.line ?? value.mark?.line),
                              message: "unknown key\(suffix).\(suggestion) Known keys here: \(known.joined(separator: ", ")).")
        }
    }

    static func closest(_ word: String, in candidates: [String]) -> String? {
        func distance(_ a: [Character], _ b: [Character]) -> Int {
            var previous = Array(0...b.count)
            for (i, x) in a.enumerated() {
                var current = [i + 1]
                for (j, y) in b.enumerated() {
                    current.append(Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
                }
                previous = current
            }
            return previous[b.count]
        }
        let scored = candidates.map { ($0, distance(Array(word), Array($0))) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= Swift.max(2, word.count / 3) else { return nil }
        return best
    }
}

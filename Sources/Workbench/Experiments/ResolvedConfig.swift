import Foundation

/// An experiment with every key at its effective value, as a run folder's `config.yaml` holds it:
/// the YAML text and its key paths with their values ("train.lr" → "0.001"), parsed once with the
/// YAML parser. Resume, `reproduce`, `runs compare` and TensorBoard's hparams all read this value.
public struct ResolvedConfig: Equatable {
    public let yaml: String
    public let values: [String: String]

    public init(yaml: String) {
        self.yaml = yaml
        values = ConfigReader.flattened(yaml: yaml)
    }

    /// A run folder's `config.yaml`, or nil when it has none.
    public init?(run: RunDirectory) {
        guard let text = try? String(contentsOf: run.configURL, encoding: .utf8) else { return nil }
        self.init(yaml: text)
    }

    /// Key paths in order with their values, for tables and TensorBoard.
    public var sortedValues: [(key: String, value: String)] { values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// "key: old → new" for each key whose value differs from `other`, leaving out `ignoring`.
    public func differences(to other: ResolvedConfig, ignoring: Set<String> = []) -> [String] {
        Set(values.keys).union(other.values.keys).subtracting(ignoring).sorted().compactMap { key in
            values[key] == other.values[key] ? nil : "\(key): \(values[key] ?? "(absent)") → \(other.values[key] ?? "(absent)")"
        }
    }
}

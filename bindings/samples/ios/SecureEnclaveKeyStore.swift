// Reference implementation of the pushauth `KeyStore` for iOS: both device keys in
// the Secure Enclave. Copy it into the app (and the Notification Service Extension
// target for `agree`); it is not compiled in this repository.
//
// - The signing key requires the user: `.biometryCurrentSet` (Face ID / Touch ID,
//   invalidated when the enrolled biometrics change) + `.privateKeyUsage`.
// - The agreement key needs no user presence and is readable after first unlock, in
//   a keychain access group shared with the Notification Service Extension.
//
// When the user adds or removes a face or fingerprint, iOS makes the signing key
// unusable. `sign` then throws `KeyStoreError.KeyInvalidated` (or `NotFound`), the
// SDK throws `PushAuthError.KeyInvalidated`, and the app must delete its stored
// `EnrollmentState` and enroll again with a new activation code.

import Foundation
import LocalAuthentication
import PushAuth
import Security

final class SecureEnclaveKeyStore: KeyStore, @unchecked Sendable {
    private let accessGroup: String?
    /// One context for the few signatures of one user action (request proof +
    /// approval proof): Face ID is asked once within `reuseSeconds`.
    private let context = LAContext()

    init(accessGroup: String?, prompt: String = "Confirm the payment", reuseSeconds: TimeInterval = 10) {
        self.accessGroup = accessGroup
        context.localizedReason = prompt
        context.touchIDAuthenticationAllowableReuseDuration = reuseSeconds
    }

    func createSigningKey(alias: String) throws -> Data {
        try create(alias: alias, flags: [.privateKeyUsage, .biometryCurrentSet],
                   accessible: kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly)
    }

    func createAgreementKey(alias: String) throws -> Data {
        try create(alias: alias, flags: [.privateKeyUsage],
                   accessible: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly)
    }

    func sign(alias: String, message: Data) throws -> Data {
        let key = try privateKey(alias: alias)
        var error: Unmanaged<CFError>?
        // X9.62 signatures are DER ECDSA-Sig-Value; the SDK normalises them.
        guard let signature = SecKeyCreateSignature(key, .ecdsaSignatureMessageX962SHA256,
                                                    message as CFData, &error) as Data? else {
            throw mapped(error?.takeRetainedValue())
        }
        return signature
    }

    func agree(alias: String, peerPublicKey: Data) throws -> Data {
        let key = try privateKey(alias: alias)
        var error: Unmanaged<CFError>?
        let attributes: [String: Any] = [kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
                                         kSecAttrKeyClass as String: kSecAttrKeyClassPublic]
        guard let peer = SecKeyCreateWithData(peerPublicKey as CFData, attributes as CFDictionary, &error),
              let shared = SecKeyCopyKeyExchangeResult(key, .ecdhKeyExchangeStandard, peer,
                                                       [:] as CFDictionary, &error) as Data? else {
            throw mapped(error?.takeRetainedValue())
        }
        return shared  // the 32-byte x coordinate
    }

    func deleteKey(alias: String) throws {
        var query = baseQuery(alias: alias)
        query[kSecClass as String] = kSecClassKey
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw KeyStoreError.Other(detail: "SecItemDelete failed: \(status)")
        }
    }

    // MARK: - helpers

    private func baseQuery(alias: String) -> [String: Any] {
        var query: [String: Any] = [kSecAttrApplicationTag as String: Data(alias.utf8)]
        if let group = accessGroup { query[kSecAttrAccessGroup as String] = group }
        return query
    }

    private func create(alias: String, flags: SecAccessControlCreateFlags, accessible: CFString) throws -> Data {
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(nil, accessible, flags, &error) else {
            throw mapped(error?.takeRetainedValue())
        }
        var privateAttributes = baseQuery(alias: alias)
        privateAttributes[kSecAttrIsPermanent as String] = true
        privateAttributes[kSecAttrAccessControl as String] = access
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: privateAttributes,
        ]
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error),
              let publicKey = SecKeyCopyPublicKey(key),
              let sec1 = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
            throw mapped(error?.takeRetainedValue())
        }
        return sec1  // 65-byte uncompressed point
    }

    private func privateKey(alias: String) throws -> SecKey {
        var query = baseQuery(alias: alias)
        query[kSecClass as String] = kSecClassKey
        query[kSecAttrKeyType as String] = kSecAttrKeyTypeECSECPrimeRandom
        query[kSecReturnRef as String] = true
        query[kSecUseAuthenticationContext as String] = context
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess: return item as! SecKey  // swiftlint:disable:this force_cast
        case errSecItemNotFound: throw KeyStoreError.NotFound
        case errSecUserCanceled: throw KeyStoreError.UserCancelled
        default: throw KeyStoreError.Other(detail: "SecItemCopyMatching failed: \(status)")
        }
    }

    private func mapped(_ error: CFError?) -> KeyStoreError {
        guard let error = error else { return .Other(detail: "unknown Security framework error") }
        let code = CFErrorGetCode(error)
        if CFErrorGetDomain(error) as String == LAErrorDomain {
            switch LAError.Code(rawValue: code) {
            case .userCancel, .appCancel, .systemCancel, .userFallback: return .UserCancelled
            // All biometrics or the passcode removed: the key is gone for good.
            case .biometryNotEnrolled, .passcodeNotSet: return .KeyInvalidated
            default: break
            }
        }
        switch OSStatus(code) {
        case errSecUserCanceled: return .UserCancelled
        case errSecItemNotFound: return .NotFound
        // The Secure Enclave refuses a key whose biometric set changed.
        case errSecAuthFailed, errSecInvalidKeyRef: return .KeyInvalidated
        default: return .Other(detail: "Security framework error \(code)")
        }
    }
}

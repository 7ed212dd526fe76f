// Reference implementation of the pushauth `KeyStore` for Android. Copy it (with
// BiometricGate.kt and WrappedAgreementKeys.kt) into the app; it is not compiled in this
// repository (no Android SDK here). Written against the foreign trait of protocol v2
// (docs/protocol.md, bindings/README.md): three keys per enrollment.
//
// | purpose          | where                                  | user verification                         |
// |------------------|----------------------------------------|-------------------------------------------|
// | DEVICE_SIGNING   | Keystore, StrongBox when present       | none: request proofs, declines, push-token |
// |                  |                                        | refresh from FirebaseMessagingService      |
// | APPROVAL_SIGNING | Keystore, StrongBox when present       | strong biometric for EVERY use: one        |
// |                  |                                        | BiometricPrompt + CryptoObject per sign    |
// | AGREEMENT        | Keystore PURPOSE_AGREE_KEY (API 31+);  | none: push decryption while locked         |
// |                  | below 31 see WrappedAgreementKeys.kt   |                                            |
//
// When the user enrolls a new fingerprint/face (or removes them all, or the secure lock
// screen), Android permanently invalidates the approval key: `initSign` throws
// KeyPermanentlyInvalidatedException and `sign` throws `KeyStoreException.KeyInvalidated`.
// The device key still works, so the app can still list, show and decline; approving
// needs a migration grant from another enrolled device or a new enrollment.

package com.example.issuer.pushauth

import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyPermanentlyInvalidatedException
import android.security.keystore.KeyProperties
import android.security.keystore.StrongBoxUnavailableException
import androidx.biometric.BiometricPrompt
import java.security.KeyFactory
import java.security.KeyPairGenerator
import java.security.PrivateKey
import java.security.Signature
import java.security.UnrecoverableKeyException
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.X509EncodedKeySpec
import javax.crypto.KeyAgreement
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.withContext
import uniffi.pushauth.KeyPurpose
import uniffi.pushauth.KeyStore
import uniffi.pushauth.KeyStoreException
import uniffi.pushauth.SigningPrompt

/**
 * @param gate shows the BiometricPrompt for approval signatures on whatever activity is in
 *   the foreground (see BiometricGate.kt); the SDK only asks for an approval signature
 *   from `approve(view)` / `create_migration_grant()`, i.e. while the app is on screen.
 * @param agreementFallback the agreement key store for API 26–30 (no Keystore ECDH).
 */
class AndroidKeystoreKeyStore(
    context: Context,
    private val gate: BiometricGate,
    private val agreementFallback: WrappedAgreementKeys = WrappedAgreementKeys(context),
) : KeyStore {
    private val hasStrongBox = Build.VERSION.SDK_INT >= Build.VERSION_CODES.P &&
        context.packageManager.hasSystemFeature(PackageManager.FEATURE_STRONGBOX_KEYSTORE)

    private fun keystore(): java.security.KeyStore =
        java.security.KeyStore.getInstance(ANDROID_KEYSTORE).apply { load(null) }

    // ---- create ------------------------------------------------------------------------

    override suspend fun createKey(alias: String, purpose: KeyPurpose): ByteArray =
        withContext(Dispatchers.IO) {
            when (purpose) {
                KeyPurpose.DEVICE_SIGNING -> generate(alias, strongBox = hasStrongBox) { builder ->
                    builder.setUserAuthenticationRequired(false)
                }
                KeyPurpose.APPROVAL_SIGNING -> generate(alias, strongBox = hasStrongBox) { builder ->
                    builder.setUserAuthenticationRequired(true)
                        // Invalidated when biometrics are added (or all removed): an attacker
                        // who enrolls their own finger cannot approve.
                        .setInvalidatedByBiometricEnrollment(true)
                    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.R) {
                        // 0 = authentication for EVERY use, through a CryptoObject; strong
                        // (class 3) biometrics only, no device-credential fallback.
                        builder.setUserAuthenticationParameters(0, KeyProperties.AUTH_BIOMETRIC_STRONG)
                    } else {
                        // API 26–29: -1 = every use, biometric only (the pre-30 spelling).
                        @Suppress("DEPRECATION")
                        builder.setUserAuthenticationValidityDurationSeconds(-1)
                    }
                    builder
                }
                KeyPurpose.AGREEMENT ->
                    if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.S) {
                        // TEE, not StrongBox: ECDH runs in the FirebaseMessagingService's
                        // few seconds and StrongBox is slow; no user authentication so a
                        // push can be decrypted while the phone is locked.
                        generateAgreementKey(alias)
                    } else {
                        agreementFallback.create(alias)
                    }
            }
        }

    /** Creates an EC P-256 signing key; retries without StrongBox when the chip refuses. */
    private fun generate(
        alias: String,
        strongBox: Boolean,
        configure: (KeyGenParameterSpec.Builder) -> KeyGenParameterSpec.Builder,
    ): ByteArray {
        fun spec(inStrongBox: Boolean): KeyGenParameterSpec {
            val builder = KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_SIGN)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .setDigests(KeyProperties.DIGEST_SHA256)
            if (inStrongBox) builder.setIsStrongBoxBacked(true)
            return configure(builder).build()
        }
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE)
        val pair = try {
            generator.initialize(spec(strongBox))
            generator.generateKeyPair()
        } catch (e: StrongBoxUnavailableException) {
            // Declared FEATURE_STRONGBOX_KEYSTORE but this key cannot live there: TEE.
            generator.initialize(spec(false))
            generator.generateKeyPair()
        } catch (e: Exception) {
            throw KeyStoreException.Unavailable("key generation failed: ${e.javaClass.simpleName}")
        }
        return sec1(pair.public as ECPublicKey)
    }

    private fun generateAgreementKey(alias: String): ByteArray = try {
        val generator = KeyPairGenerator.getInstance(KeyProperties.KEY_ALGORITHM_EC, ANDROID_KEYSTORE)
        generator.initialize(
            KeyGenParameterSpec.Builder(alias, KeyProperties.PURPOSE_AGREE_KEY)
                .setAlgorithmParameterSpec(ECGenParameterSpec("secp256r1"))
                .build(),
        )
        sec1(generator.generateKeyPair().public as ECPublicKey)
    } catch (e: Exception) {
        throw KeyStoreException.Unavailable("agreement key generation failed: ${e.javaClass.simpleName}")
    }

    // ---- sign --------------------------------------------------------------------------

    override suspend fun sign(
        alias: String,
        purpose: KeyPurpose,
        message: ByteArray,
        prompt: SigningPrompt?,
    ): ByteArray {
        val key = withContext(Dispatchers.IO) { privateKey(alias) }
        val signature = Signature.getInstance("SHA256withECDSA")
        try {
            signature.initSign(key)
        } catch (e: KeyPermanentlyInvalidatedException) {
            throw KeyStoreException.KeyInvalidated()
        } catch (e: Exception) {
            throw KeyStoreException.Other("initSign failed: ${e.javaClass.simpleName}")
        }
        val ready = when (purpose) {
            KeyPurpose.DEVICE_SIGNING -> signature
            KeyPurpose.APPROVAL_SIGNING -> {
                // A fresh Signature bound to this one prompt: the key authorises exactly
                // the operation the user confirmed, nothing before or after it.
                val shown = prompt ?: throw KeyStoreException.Other("approval signature without a prompt")
                val authorised = gate.authenticate(shown, BiometricPrompt.CryptoObject(signature))
                authorised.signature ?: throw KeyStoreException.Other("prompt returned no Signature")
            }
            KeyPurpose.AGREEMENT -> throw KeyStoreException.Other("an agreement key does not sign")
        }
        return withContext(Dispatchers.IO) {
            try {
                ready.update(message)
                ready.sign() // DER ECDSA-Sig-Value; the SDK accepts DER
            } catch (e: KeyPermanentlyInvalidatedException) {
                throw KeyStoreException.KeyInvalidated()
            } catch (e: Exception) {
                throw KeyStoreException.Other("signing failed: ${e.javaClass.simpleName}")
            }
        }
    }

    // ---- agree -------------------------------------------------------------------------

    override suspend fun agree(alias: String, peerPublicKey: ByteArray): ByteArray =
        withContext(Dispatchers.IO) {
            // A key created before the phone was upgraded to Android 12 stays a wrapped one.
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.S || agreementFallback.has(alias)) {
                return@withContext agreementFallback.agree(alias, peerPublicKey)
            }
            val peer = try {
                KeyFactory.getInstance("EC").generatePublic(X509EncodedKeySpec(SPKI_P256_PREFIX + peerPublicKey))
            } catch (e: Exception) {
                throw KeyStoreException.Other("peer key is not a P-256 point")
            }
            try {
                KeyAgreement.getInstance("ECDH", ANDROID_KEYSTORE).run {
                    init(privateKey(alias))
                    doPhase(peer, true)
                    generateSecret() // the 32-byte x coordinate
                }
            } catch (e: KeyStoreException) {
                throw e
            } catch (e: Exception) {
                throw KeyStoreException.Other("key agreement failed: ${e.javaClass.simpleName}")
            }
        }

    // ---- delete ------------------------------------------------------------------------

    override suspend fun deleteKey(alias: String) = withContext(Dispatchers.IO) {
        try {
            val keystore = keystore()
            if (keystore.containsAlias(alias)) keystore.deleteEntry(alias)
            agreementFallback.delete(alias)
        } catch (e: Exception) {
            throw KeyStoreException.Other("delete failed: ${e.javaClass.simpleName}")
        }
    }

    // ---- helpers -----------------------------------------------------------------------

    private fun privateKey(alias: String): PrivateKey = try {
        keystore().getKey(alias, null) as? PrivateKey ?: throw KeyStoreException.NotFound()
    } catch (e: KeyStoreException) {
        throw e
    } catch (e: UnrecoverableKeyException) {
        // Some releases report an invalidated auth-bound key here instead of at initSign.
        throw KeyStoreException.KeyInvalidated()
    } catch (e: KeyPermanentlyInvalidatedException) {
        throw KeyStoreException.KeyInvalidated()
    } catch (e: Exception) {
        throw KeyStoreException.Unavailable("Android Keystore: ${e.javaClass.simpleName}")
    }

    companion object {
        private const val ANDROID_KEYSTORE = "AndroidKeyStore"

        /** DER prefix of a P-256 SubjectPublicKeyInfo before the 65-byte point. */
        internal val SPKI_P256_PREFIX = byteArrayOf(
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x02, 0x01,
            0x06, 0x08, 0x2a, 0x86.toByte(), 0x48, 0xce.toByte(), 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        )

        /** The 65-byte uncompressed SEC1 point 04 || X || Y the trait returns. */
        internal fun sec1(key: ECPublicKey): ByteArray {
            fun fixed(value: java.math.BigInteger): ByteArray {
                val bytes = value.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
                require(bytes.size <= 32) { "not a P-256 coordinate" }
                return ByteArray(32 - bytes.size) + bytes
            }
            return byteArrayOf(0x04) + fixed(key.w.affineX) + fixed(key.w.affineY)
        }
    }
}

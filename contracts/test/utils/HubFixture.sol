// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {OracleHub} from "../../src/OracleHub.sol";
import {IOracleHub} from "../../src/IOracleHub.sol";
import {Sig, Packing} from "./Packing.sol";

/// @notice Shared set-up: a hub with three signers (threshold 2) and two feeds, plus signing helpers.
abstract contract HubFixture is Test {
    using Packing for IOracleHub.Report[];
    using Packing for Sig[];

    OracleHub internal hub;
    uint256[] internal keys; // sorted by signer address
    address[] internal signers; // ascending
    address internal constant OWNER = address(0x0A11CE);
    bytes32 internal constant BTC = keccak256("BTC/USD");
    bytes32 internal constant ETH = keccak256("ETH/USD");
    uint16 internal constant BTC_I = 0;
    uint16 internal constant ETH_I = 1;
    uint32 internal constant SKEW = 60;
    int256 internal constant BTC_MIN = 1_000e8; // 1e11 = 1 * 10^11
    int256 internal constant BTC_MAX = 10_000_000e8; // 1e15
    uint256 internal constant T0 = 1_763_700_000;
    uint32 internal constant MAX_AGE = 120;

    function setUp() public virtual {
        vm.warp(T0);
        uint256[3] memory raw = [uint256(0xA11CE), uint256(0xB0B), uint256(0xC4A5)];
        for (uint256 i = 0; i < raw.length; ++i) {
            keys.push(raw[i]);
            signers.push(vm.addr(raw[i]));
        }
        _sortByAddress(keys, signers);
        hub = new OracleHub(OWNER, signers, 2, SKEW);
        vm.startPrank(OWNER);
        hub.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, MAX_AGE, "BTC / USD");
        hub.addFeed(ETH, 8, 10e8, 1_000_000e8, 3600, MAX_AGE, "ETH / USD");
        vm.stopPrank();
    }

    function _sortByAddress(uint256[] storage k, address[] storage a) internal {
        for (uint256 i = 0; i < a.length; ++i) {
            for (uint256 j = i + 1; j < a.length; ++j) {
                if (a[j] < a[i]) {
                    (a[i], a[j]) = (a[j], a[i]);
                    (k[i], k[j]) = (k[j], k[i]);
                }
            }
        }
    }

    function _now() internal view returns (uint32) {
        return uint32(block.timestamp);
    }

    function _one(uint16 index, uint32 round, int128 price, uint32 at)
        internal
        pure
        returns (IOracleHub.Report[] memory reports)
    {
        reports = new IOracleHub.Report[](1);
        reports[0] = IOracleHub.Report({feedIndex: index, roundId: round, price: price, observedAt: at});
    }

    /// @dev Signs with the given keys in the given order (callers order them by address when they want
    ///      a valid batch).
    function _sign(IOracleHub.Report[] memory reports, uint256[] memory signingKeys)
        internal
        view
        returns (Sig[] memory sigs)
    {
        bytes32 digest = hub.batchDigest(reports.pack());
        sigs = new Sig[](signingKeys.length);
        for (uint256 i = 0; i < signingKeys.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(signingKeys[i], digest);
            sigs[i] = Sig({v: v, r: r, s: s});
        }
    }

    /// @dev `hub.submit` with the reports and signatures packed as the hub reads them.
    function _send(IOracleHub.Report[] memory reports, Sig[] memory sigs) internal {
        hub.submit(reports.pack(), sigs.pack());
    }

    /// @dev The calldata of `hub.submit(reports, sigs)`, for low-level calls that must not revert the test.
    function _call(IOracleHub.Report[] memory reports, Sig[] memory sigs) internal returns (bool ok) {
        (ok,) = address(hub).call(abi.encodeCall(hub.submit, (reports.pack(), sigs.pack())));
    }

    /// @dev The first two signers, ascending: a valid quorum.
    function _quorum() internal view returns (uint256[] memory k) {
        k = new uint256[](2);
        k[0] = keys[0];
        k[1] = keys[1];
    }

    function _all() internal view returns (uint256[] memory k) {
        k = new uint256[](keys.length);
        for (uint256 i = 0; i < keys.length; ++i) {
            k[i] = keys[i];
        }
    }

    function _submit(IOracleHub.Report[] memory reports) internal {
        _send(reports, _sign(reports, _quorum()));
    }

    function _round(bytes32 feed) internal view returns (uint256 round) {
        (,, uint32 r,,) = hub.latest(feed);
        return r;
    }

    function _price(bytes32 feed) internal view returns (int256 price) {
        (int128 p,,,,) = hub.latest(feed);
        return p;
    }

    /// @dev Storage slot of the hub's `_rounds` mapping (`forge inspect OracleHub storage-layout`).
    uint256 internal constant ROUNDS_SLOT = 6;

    /// @dev Writes a feed's latest round and observation time straight into `_rounds[index >> 2]`
    ///      (round (32) | observedAt (32) at bit 64 * (index & 3), see OracleHub), to reach rounds no test
    ///      could reach by submitting. Only that feed's 64 bits change. The ring slot of `round` is left
    ///      as it is: submit `round + 1` afterwards to get a fully consistent feed.
    function _forceRound(uint16 index, uint32 round, uint32 observedAt) internal {
        bytes32 slot = keccak256(abi.encode(uint256(index >> 2), ROUNDS_SLOT));
        uint256 shift = uint256(index & 3) * 64;
        uint256 word = uint256(vm.load(address(hub), slot));
        word =
            (word & ~(uint256(type(uint64).max) << shift)) | (((uint256(round) << 32) | observedAt) << shift);
        vm.store(address(hub), slot, bytes32(word));
    }

    /// @dev The `update` word of PriceUpdated (see IOracleHub).
    function _update(uint32 round, int128 price, uint32 observedAt) internal pure returns (uint256) {
        return (uint256(round) << 224) | (uint256(observedAt) << 192) | uint256(uint128(price));
    }

    /// @dev Asserts `hub.signers()` is strictly ascending and holds exactly `expected` (any order).
    function _assertSigners(address[] memory expected) internal view {
        address[] memory list = hub.signers();
        vm.assertEq(list.length, expected.length);
        vm.assertEq(uint256(hub.signerCount()), expected.length);
        for (uint256 i = 1; i < list.length; ++i) {
            vm.assertTrue(list[i - 1] < list[i], "signers() ascending");
        }
        for (uint256 i = 0; i < expected.length; ++i) {
            bool found;
            for (uint256 j = 0; j < list.length; ++j) {
                if (list[j] == expected[i]) found = true;
            }
            vm.assertTrue(found, "expected signer listed");
            vm.assertTrue(hub.isSigner(expected[i]));
        }
    }
}

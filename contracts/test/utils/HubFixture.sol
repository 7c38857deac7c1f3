// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./Test.sol";
import {OracleHub} from "../../src/OracleHub.sol";
import {IOracleHub} from "../../src/IOracleHub.sol";

/// @notice Shared set-up: a hub with three signers (threshold 2) and two feeds, plus signing helpers.
abstract contract HubFixture is Test {
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
        hub.addFeed(BTC, 8, BTC_MIN, BTC_MAX, 3600, "BTC / USD");
        hub.addFeed(ETH, 8, 10e8, 1_000_000e8, 3600, "ETH / USD");
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
        returns (IOracleHub.Signature[] memory sigs)
    {
        bytes32 digest = hub.batchDigest(reports);
        sigs = new IOracleHub.Signature[](signingKeys.length);
        for (uint256 i = 0; i < signingKeys.length; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(signingKeys[i], digest);
            sigs[i] = IOracleHub.Signature({v: v, r: r, s: s});
        }
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
        IOracleHub.Signature[] memory sigs = _sign(reports, _quorum());
        hub.submit(reports, sigs);
    }

    function _round(bytes32 feed) internal view returns (uint256 round) {
        (,, uint32 r,,) = hub.latest(feed);
        return r;
    }

    function _price(bytes32 feed) internal view returns (int256 price) {
        (int128 p,,,,) = hub.latest(feed);
        return p;
    }
}

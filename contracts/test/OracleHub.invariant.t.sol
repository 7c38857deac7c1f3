// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "./utils/Test.sol";
import {OracleHub} from "../src/OracleHub.sol";
import {IOracleHub} from "../src/IOracleHub.sol";

/// @notice Drives the hub with random batches signed by random subsets of a key pool, random signer
///         set changes and time jumps, and records (ghost state) every report that was part of a
///         batch signed by a quorum of the signer set at that moment.
contract HubHandler is Test {
    OracleHub public immutable hub;
    address public immutable owner;
    uint256 internal constant FEEDS = 4;
    int256 public constant MIN = 100e8;
    int256 public constant MAX = 1_000_000e8;

    uint256[] internal pool; // 6 keys; the first 3 start authorized
    /// @dev feed => round => keccak(price, observedAt) => whether a quorum-signed batch carried it
    ///      (a set: later batches may carry other, skipped reports for the same round).
    mapping(uint256 => mapping(uint32 => mapping(bytes32 => bool))) public signedByQuorum;
    /// @dev Highest round each feed was seen at after any call.
    uint32[FEEDS] public highestSeen;
    bool public roundWentBack;
    bool public acceptedWithoutQuorum;
    uint256 public submits;
    uint256 public accepted;

    constructor(OracleHub hub_, address owner_, uint256[] memory keys) {
        hub = hub_;
        owner = owner_;
        pool = keys;
    }

    function feedId(uint256 i) public pure returns (bytes32) {
        return keccak256(abi.encodePacked("INV", i));
    }

    function submit(uint256 seed, uint8 mask, uint8 count) external {
        count = uint8(bound(count, 1, 5));
        IOracleHub.Report[] memory reports = new IOracleHub.Report[](count);
        for (uint256 j = 0; j < count; ++j) {
            uint256 s = uint256(keccak256(abi.encode(seed, j)));
            uint16 index = uint16(s % FEEDS);
            (,, uint32 current,,) = hub.latest(feedId(index));
            reports[j] = IOracleHub.Report({
                feedIndex: index,
                roundId: uint32(current + (s >> 8) % 3), // sometimes stale
                price: int128(int256(bound(s >> 16, uint256(MIN) - 5, uint256(MAX) + 5))),
                observedAt: uint32(block.timestamp - (s >> 96) % 20 + (s >> 128) % 90)
            });
        }
        // With the top bit of `mask`, exactly the keys that are signers now (a valid quorum, so
        // that batches land often); otherwise a random subset of the pool. Ordered by address.
        uint256[] memory chosen = new uint256[](pool.length);
        uint256 n;
        uint256 authorized;
        bool allAuthorized = true;
        for (uint256 i = 0; i < pool.length; ++i) {
            bool pick = mask & 0x80 != 0 ? hub.isSigner(vm.addr(pool[i])) : mask & (1 << i) != 0;
            if (!pick) continue;
            chosen[n++] = pool[i];
            if (hub.isSigner(vm.addr(pool[i]))) ++authorized;
            else allAuthorized = false;
        }
        for (uint256 i = 0; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(chosen[j]) < vm.addr(chosen[i])) (chosen[i], chosen[j]) = (chosen[j], chosen[i]);
            }
        }
        bytes32 digest = hub.batchDigest(reports);
        IOracleHub.Signature[] memory sigs = new IOracleHub.Signature[](n);
        for (uint256 i = 0; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s_) = vm.sign(chosen[i], digest);
            sigs[i] = IOracleHub.Signature({v: v, r: r, s: s_});
        }
        bool quorum = allAuthorized && authorized >= hub.threshold();
        if (quorum) {
            for (uint256 j = 0; j < count; ++j) {
                signedByQuorum[
                    reports[j].feedIndex
                ][reports[j].roundId][keccak256(abi.encode(reports[j].price, reports[j].observedAt))] = true;
            }
        }
        ++submits;
        try hub.submit(reports, sigs) {
            ++accepted;
            if (!quorum) acceptedWithoutQuorum = true;
        } catch {}
        _observe();
    }

    function addSigner(uint8 which) external {
        address signer = vm.addr(pool[which % pool.length]);
        if (hub.isSigner(signer)) return;
        vm.prank(owner);
        hub.addSigner(signer);
        _observe();
    }

    function removeSigner(uint8 which) external {
        address signer = vm.addr(pool[which % pool.length]);
        if (!hub.isSigner(signer) || hub.signerCount() <= hub.threshold()) return;
        vm.prank(owner);
        hub.removeSigner(signer);
        _observe();
    }

    function setThreshold(uint8 t) external {
        uint8 threshold = uint8(bound(t, 1, hub.signerCount()));
        vm.prank(owner); // applies to the next call only: compute arguments first
        hub.setThreshold(threshold);
        _observe();
    }

    function warp(uint16 seconds_) external {
        vm.warp(block.timestamp + seconds_ % 600);
        _observe();
    }

    function _observe() internal {
        for (uint256 i = 0; i < FEEDS; ++i) {
            (,, uint32 round,,) = hub.latest(feedId(i));
            if (round < highestSeen[i]) roundWentBack = true;
            highestSeen[i] = round;
        }
    }
}

/// @notice Invariants: rounds only increase; a stored value always came from a batch signed by a
///         quorum of the signer set at that time; stored values stay inside the bounds.
contract OracleHubInvariantTest is Test {
    OracleHub internal hub;
    HubHandler internal handler;

    function setUp() public {
        vm.warp(1_763_700_000);
        uint256[] memory keys = new uint256[](6);
        address[] memory initial = new address[](3);
        for (uint256 i = 0; i < 6; ++i) {
            keys[i] = 0x1000 + i;
        }
        for (uint256 i = 0; i < 3; ++i) {
            initial[i] = vm.addr(keys[i]);
        }
        hub = new OracleHub(address(this), initial, 2, 60);
        handler = new HubHandler(hub, address(this), keys);
        for (uint256 i = 0; i < 4; ++i) {
            hub.addFeed(handler.feedId(i), 8, handler.MIN(), handler.MAX(), 60, "inv");
        }
    }

    /// @dev forge fuzzes only the handler's functions.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_RoundsOnlyIncrease() public view {
        vm.assertFalse(handler.roundWentBack());
        for (uint256 i = 0; i < 4; ++i) {
            (,, uint32 round,,) = hub.latest(handler.feedId(i));
            vm.assertEq(uint256(round), uint256(handler.highestSeen(i)));
        }
    }

    function invariant_StoredValueCameFromQuorumBatch() public view {
        vm.assertFalse(handler.acceptedWithoutQuorum());
        for (uint256 i = 0; i < 4; ++i) {
            (int128 price,, uint32 round, uint32 observedAt,) = hub.latest(handler.feedId(i));
            if (round == 0) continue;
            vm.assertTrue(handler.signedByQuorum(i, round, keccak256(abi.encode(price, observedAt))));
        }
    }

    function invariant_ValuesInsideBounds() public view {
        for (uint256 i = 0; i < 4; ++i) {
            (int128 price,, uint32 round,,) = hub.latest(handler.feedId(i));
            if (round == 0) continue;
            vm.assertTrue(price > handler.MIN() && price < handler.MAX());
        }
    }

    /// @dev Not vacuous: the handler's valid-quorum path lands batches, and the ghost state sees them.
    function test_HandlerLandsBatches() public {
        for (uint256 i = 0; i < 8; ++i) {
            handler.submit(i, 0x80, 5);
        }
        vm.assertGt(handler.accepted(), 0);
        invariant_StoredValueCameFromQuorumBatch();
        invariant_ValuesInsideBounds();
        uint256 stored;
        for (uint256 i = 0; i < 4; ++i) {
            (,, uint32 round,,) = hub.latest(handler.feedId(i));
            if (round > 0) ++stored;
        }
        vm.assertGt(stored, 0);
    }
}

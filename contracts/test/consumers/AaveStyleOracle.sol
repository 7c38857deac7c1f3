// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AggregatorInterface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorInterface.sol";

/// @notice The price getter a lending protocol's fallback oracle answers (as Aave's IPriceOracleGetter).
interface IPriceOracleGetter {
    function getAssetPrice(address asset) external view returns (uint256);
}

/// @notice Test fixture mimicking Aave v2/v3's `AaveOracle`: one Chainlink source per asset, read with
///         the legacy `latestAnswer()` only (no round, no timestamp, no staleness check); an answer that
///         is not positive (0 is what a Chainlink feed answers without data), or an asset without a
///         source, is priced by the fallback oracle instead. The base currency is priced at its unit.
///         Written for these tests, after the pattern; not Aave's code.
contract AaveStyleOracle is IPriceOracleGetter {
    address public immutable owner;
    address public immutable baseCurrency;
    uint256 public immutable baseCurrencyUnit;
    IPriceOracleGetter public fallbackOracle;
    mapping(address asset => AggregatorInterface source) internal _sources;

    event AssetSourceUpdated(address indexed asset, address indexed source);
    event FallbackOracleUpdated(address indexed fallbackOracle);

    error NotOwner();
    error LengthMismatch();

    constructor(address baseCurrency_, uint256 baseCurrencyUnit_, IPriceOracleGetter fallbackOracle_) {
        owner = msg.sender;
        baseCurrency = baseCurrency_;
        baseCurrencyUnit = baseCurrencyUnit_;
        fallbackOracle = fallbackOracle_;
    }

    function setAssetSources(address[] calldata assets, address[] calldata sources) external {
        if (msg.sender != owner) revert NotOwner();
        if (assets.length != sources.length) revert LengthMismatch();
        for (uint256 i = 0; i < assets.length; ++i) {
            _sources[assets[i]] = AggregatorInterface(sources[i]);
            emit AssetSourceUpdated(assets[i], sources[i]);
        }
    }

    function setFallbackOracle(IPriceOracleGetter fallbackOracle_) external {
        if (msg.sender != owner) revert NotOwner();
        fallbackOracle = fallbackOracle_;
        emit FallbackOracleUpdated(address(fallbackOracle_));
    }

    function getSourceOfAsset(address asset) external view returns (address) {
        return address(_sources[asset]);
    }

    /// @notice The asset's price in the base currency: the source's latest answer when positive, else
    ///         the fallback oracle's price.
    function getAssetPrice(address asset) public view returns (uint256) {
        if (asset == baseCurrency) return baseCurrencyUnit;
        AggregatorInterface source = _sources[asset];
        if (address(source) == address(0)) return fallbackOracle.getAssetPrice(asset);
        int256 answer = source.latestAnswer();
        if (answer > 0) return uint256(answer);
        return fallbackOracle.getAssetPrice(asset);
    }

    function getAssetsPrices(address[] calldata assets) external view returns (uint256[] memory prices) {
        prices = new uint256[](assets.length);
        for (uint256 i = 0; i < assets.length; ++i) {
            prices[i] = getAssetPrice(assets[i]);
        }
    }
}

/// @notice A fallback oracle whose prices an operator sets by hand (test fixture).
contract ManualPriceOracle is IPriceOracleGetter {
    mapping(address asset => uint256 price) public prices;

    function setAssetPrice(address asset, uint256 price) external {
        prices[asset] = price;
    }

    function getAssetPrice(address asset) external view returns (uint256) {
        return prices[asset];
    }
}
